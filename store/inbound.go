package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Inbound statuses. A row is "received" while its mail is being filed and
// ends in one of the others.
const (
	InboundReceived    = "received"
	InboundFiled       = "filed"
	InboundIgnored     = "ignored"
	InboundRejected    = "rejected"
	InboundQuarantined = "quarantined"
	InboundFailed      = "failed"
)

func validInboundStatus(s string) bool {
	switch s {
	case InboundReceived, InboundFiled, InboundIgnored, InboundRejected, InboundQuarantined, InboundFailed:
		return true
	}
	return false
}

// Inbound is one mail of the raw archive, kept byte for byte.
type Inbound struct {
	ID       int64
	Received time.Time
	// Source is how it came: smtp, lmtp, imap:NAME, pop3:NAME, deliver,
	// import.
	Source       string
	EnvelopeFrom string
	EnvelopeTo   []string
	Raw          []byte
	SHA256       string // hex of Raw, computed by InsertInbound
	MessageID    string
	Status       string
	Reason       string // why it was ignored, rejected, quarantined or failed
	IssueID      int64  // 0 = none
	MsgID        int64  // the stored message; 0 = none
}

const inboundCols = `id, received, source, envelope_from, envelope_to, sha256, message_id, status, reason, issue_id, msg_id`

type inboundRow struct {
	in Inbound
	to string
}

func (r *inboundRow) dest() []any {
	return []any{&r.in.ID, timeCol{&r.in.Received}, &r.in.Source, &r.in.EnvelopeFrom, &r.to, &r.in.SHA256,
		&r.in.MessageID, &r.in.Status, &r.in.Reason, idCol{&r.in.IssueID}, idCol{&r.in.MsgID}}
}

func (r *inboundRow) inbound() Inbound {
	in := r.in
	in.EnvelopeTo = splitList(r.to, "\n")
	return in
}

// InsertInbound archives in and sets its ID and SHA256. Received defaults
// to now and Status to "received". Raw is kept exactly (CR, NUL, 8-bit and
// invalid UTF-8 included); the store keeps its own copy.
func (c *conn) InsertInbound(ctx context.Context, in *Inbound) error {
	row, err := readyInbound(in)
	if err != nil {
		return err
	}
	var id int64
	err = c.get(ctx, `INSERT INTO inbound (received, source, envelope_from, envelope_to, raw, sha256, message_id, status, reason, issue_id, msg_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		[]any{c.d.tm(row.Received), in.Source, in.EnvelopeFrom, strings.Join(in.EnvelopeTo, "\n"), nonNil(in.Raw), row.SHA256,
			in.MessageID, row.Status, in.Reason, nullID(in.IssueID), nullID(in.MsgID)}, &id)
	if err != nil {
		return fail("insert inbound", err)
	}
	in.ID, in.Received, in.SHA256, in.Status = id, row.Received, row.SHA256, row.Status
	return nil
}

// readyInbound checks in for InsertInbound and InsertInboundLater and
// returns a copy with its defaults and SHA256 set (in is not changed).
func readyInbound(in *Inbound) (Inbound, error) {
	row := *in
	if row.Status == "" {
		row.Status = InboundReceived
	}
	if !validInboundStatus(row.Status) {
		return row, fail("insert inbound", fmt.Errorf("unknown status %q", row.Status))
	}
	for _, to := range in.EnvelopeTo {
		if strings.ContainsAny(to, "\r\n") {
			return row, fail("insert inbound", fmt.Errorf("envelope recipient %q contains a line break", to))
		}
	}
	row.Received = orNow(in.Received)
	sum := sha256.Sum256(in.Raw)
	row.SHA256 = hex.EncodeToString(sum[:])
	return row, nil
}

// UpdateInbound records what became of an archived mail: its Status,
// Reason, IssueID, MsgID and MessageID (known only once the mail is
// parsed). Raw and the envelope never change. ErrNotFound if there is no
// row in.ID.
func (c *conn) UpdateInbound(ctx context.Context, in *Inbound) error {
	if !validInboundStatus(in.Status) {
		return fail("update inbound", fmt.Errorf("unknown status %q", in.Status))
	}
	err := c.affected(ctx, `UPDATE inbound SET status = $1, reason = $2, issue_id = $3, msg_id = $4, message_id = $5 WHERE id = $6`,
		in.Status, in.Reason, nullID(in.IssueID), nullID(in.MsgID), in.MessageID, in.ID)
	if err != nil {
		return fail(fmt.Sprintf("update inbound %d", in.ID), err)
	}
	return nil
}

// Inbound returns archived mail id with its Raw bytes, or ErrNotFound.
func (c *conn) Inbound(ctx context.Context, id int64) (*Inbound, error) {
	var r inboundRow
	dest := append(r.dest(), &r.in.Raw)
	if err := c.get(ctx, `SELECT `+inboundCols+`, raw FROM inbound WHERE id = $1`, []any{id}, dest...); err != nil {
		return nil, fail(fmt.Sprintf("inbound %d", id), err)
	}
	in := r.inbound()
	if in.Raw == nil {
		in.Raw = []byte{}
	}
	return &in, nil
}

// InboundFilter selects archived mail for ListInbound.
type InboundFilter struct {
	Status string // "" = any
	Limit  int    // 0 = no limit
}

func (c *conn) inbounds(ctx context.Context, op, query string, args ...any) ([]Inbound, error) {
	var out []Inbound
	err := c.each(ctx, query, args, func(rows *sql.Rows) error {
		var r inboundRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.inbound())
		return nil
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// ListInbound returns archived mail, newest first, without Raw.
func (c *conn) ListInbound(ctx context.Context, f InboundFilter) ([]Inbound, error) {
	var a args
	where := ""
	if f.Status != "" {
		where = ` WHERE status = ` + a.add(f.Status)
	}
	return c.inbounds(ctx, "list inbound", `SELECT `+inboundCols+` FROM inbound`+where+` ORDER BY id DESC LIMIT `+a.add(limitArg(f.Limit)), a...)
}

// InboundBySHA256 returns the archived mails whose raw bytes have this
// SHA-256 (hex, lower case), oldest first, without Raw: the same mail
// arriving again, by any route.
func (c *conn) InboundBySHA256(ctx context.Context, sum string) ([]Inbound, error) {
	return c.inbounds(ctx, "inbound by sha256", `SELECT `+inboundCols+` FROM inbound WHERE sha256 = $1 ORDER BY id`, strings.ToLower(sum))
}
