package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Outbox statuses.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// Outbox is one mail to send: written in the transaction that caused it,
// sent after the commit, at least once.
type Outbox struct {
	ID int64
	// Kind is "notify" (a message or change to a nosy member), "reply" (an
	// error reply to a sender), or another kind the notifier knows.
	Kind    string
	IssueID int64 // 0 = none
	MsgID   int64 // the stored message; 0 = none
	// Recipient is the envelope recipient.
	Recipient string
	// Payload is optional extra data for the notifier (a pre-rendered
	// mail, the change note, the refused mail for a reply).
	Payload []byte
	Status  string
	// Attempts counts failed delivery attempts (MarkRetry, MarkFailed).
	Attempts int
	// NextAttempt is when the row is due; a claimed row's is the end of
	// its lease.
	NextAttempt time.Time
	LastError   string
	SentAt      time.Time // zero until sent
	Created     time.Time
}

const outboxCols = `id, kind, issue_id, msg_id, recipient, status, attempts, next_attempt, last_error, sent_at, created`

func (o *Outbox) dest() []any {
	return []any{&o.ID, &o.Kind, idCol{&o.IssueID}, idCol{&o.MsgID}, &o.Recipient, &o.Status, &o.Attempts,
		timeCol{&o.NextAttempt}, &o.LastError, timeCol{&o.SentAt}, timeCol{&o.Created}}
}

// Enqueue adds o and sets its ID, Created (now), Status ("pending" unless
// set) and NextAttempt (Created unless set: due at once). Call it in the
// Tx that made the change, so the mail exists exactly when the change does.
func (c *conn) Enqueue(ctx context.Context, o *Outbox) error {
	if err := o.ready(); err != nil {
		return err
	}
	var id int64
	err := c.get(ctx, `INSERT INTO outbox (kind, issue_id, msg_id, recipient, payload, status, attempts, next_attempt, last_error, sent_at, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		[]any{o.Kind, nullID(o.IssueID), nullID(o.MsgID), o.Recipient, nonNil(o.Payload), o.Status, o.Attempts,
			c.d.tm(o.NextAttempt), o.LastError, c.d.tm(o.SentAt), c.d.tm(o.Created)}, &id)
	if err != nil {
		return fail("enqueue", err)
	}
	o.ID = id
	return nil
}

// ready checks o before it is written and sets what Enqueue defaults:
// Status, Created, NextAttempt; SentAt is normalised.
func (o *Outbox) ready() error {
	if o.Status == "" {
		o.Status = OutboxPending
	}
	switch {
	case o.Kind == "":
		return fail("enqueue", errors.New("empty kind"))
	case o.Recipient == "":
		return fail("enqueue", errors.New("empty recipient"))
	case o.Status != OutboxPending && o.Status != OutboxSent && o.Status != OutboxFailed:
		return fail("enqueue", fmt.Errorf("unknown status %q", o.Status))
	}
	o.Created = now()
	o.NextAttempt = norm(o.NextAttempt)
	if o.NextAttempt.IsZero() {
		o.NextAttempt = o.Created
	}
	o.SentAt = norm(o.SentAt)
	return nil
}

// ClaimOutbox takes up to limit pending rows due at now (next_attempt ≤
// now), oldest due first, and in the same statement pushes their
// next_attempt to now+lease, so no other worker or trackerd process takes
// them meanwhile (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer).
// The rows come back ordered by id, with Payload.
//
// The claimer must then MarkSent, MarkRetry or MarkFailed each row. If it
// dies first, the row is due again when the lease ends, and is sent again:
// delivery is at least once, so pick a lease longer than a send takes.
func (c *conn) ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Outbox, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fail("claim outbox", fmt.Errorf("limit %d and lease %v must be positive", limit, lease))
	}
	now = norm(now)
	out, err := c.outboxRows(ctx, `UPDATE outbox SET next_attempt = $1, claimed_until = $1 WHERE id IN (
			SELECT id FROM outbox WHERE status = 'pending' AND next_attempt <= $2
			ORDER BY next_attempt, id LIMIT $3`+c.d.skipLocked()+`)
		RETURNING `+outboxCols+`, payload`,
		[]any{c.d.tm(now.Add(lease)), c.d.tm(now), limit}, true)
	if err != nil {
		return nil, fail("claim outbox", err)
	}
	sortByID(out)
	return out, nil
}

// outboxRows runs query, which returns outboxCols (and payload when
// withPayload), and scans every row.
func (c *conn) outboxRows(ctx context.Context, query string, args []any, withPayload bool) ([]Outbox, error) {
	var out []Outbox
	err := c.each(ctx, query, args, func(rows *sql.Rows) error {
		var o Outbox
		dest := o.dest()
		if withPayload {
			dest = append(dest, &o.Payload)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if withPayload && o.Payload == nil {
			o.Payload = []byte{}
		}
		out = append(out, o)
		return nil
	})
	return out, err
}

// sortByID puts rows oldest first: RETURNING promises no order.
func sortByID(rows []Outbox) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
}

// MarkSent records that row id was delivered at at (zero: now).
// ErrNotFound if there is no such row.
func (c *conn) MarkSent(ctx context.Context, id int64, at time.Time) error {
	if err := c.affected(ctx, `UPDATE outbox SET status = 'sent', sent_at = $1, last_error = '', claimed_until = NULL WHERE id = $2`, c.d.tm(orNow(at)), id); err != nil {
		return fail(fmt.Sprintf("mark outbox %d sent", id), err)
	}
	return nil
}

// MarkRetry records a failed attempt of row id: attempts+1, the error, and
// the row pending again, due at next. It also puts a failed row back in
// the queue. ErrNotFound if there is no such row.
func (c *conn) MarkRetry(ctx context.Context, id int64, next time.Time, errText string) error {
	if err := c.affected(ctx, `UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt = $1, last_error = $2, claimed_until = NULL WHERE id = $3`,
		c.d.tm(orNow(next)), errText, id); err != nil {
		return fail(fmt.Sprintf("mark outbox %d for retry", id), err)
	}
	return nil
}

// MarkFailed records the last failed attempt of row id: attempts+1, the
// error, and status "failed"; it is not tried again. ErrNotFound if there
// is no such row.
func (c *conn) MarkFailed(ctx context.Context, id int64, errText string) error {
	if err := c.affected(ctx, `UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1, claimed_until = NULL WHERE id = $2`, errText, id); err != nil {
		return fail(fmt.Sprintf("mark outbox %d failed", id), err)
	}
	return nil
}

// OutboxFilter selects rows for ListOutbox.
type OutboxFilter struct {
	Status string // "" = any
	Limit  int    // 0 = no limit
}

// ListOutbox returns outbox rows, newest first, without Payload.
func (c *conn) ListOutbox(ctx context.Context, f OutboxFilter) ([]Outbox, error) {
	var a args
	where := ""
	if f.Status != "" {
		where = ` WHERE status = ` + a.add(f.Status)
	}
	out, err := c.outboxRows(ctx, `SELECT `+outboxCols+` FROM outbox`+where+` ORDER BY id DESC LIMIT `+a.add(limitArg(f.Limit)), a, false)
	if err != nil {
		return nil, fail("list outbox", err)
	}
	return out, nil
}

// Outbox returns row id with its Payload, or ErrNotFound.
func (c *conn) Outbox(ctx context.Context, id int64) (*Outbox, error) {
	var o Outbox
	if err := c.get(ctx, `SELECT `+outboxCols+`, payload FROM outbox WHERE id = $1`, []any{id}, append(o.dest(), &o.Payload)...); err != nil {
		return nil, fail(fmt.Sprintf("outbox %d", id), err)
	}
	if o.Payload == nil {
		o.Payload = []byte{}
	}
	return &o, nil
}

// idChunk bounds how many ids one statement names, far below both
// databases' limits on bound parameters.
const idChunk = 500

// eachChunk calls fn with ids in pieces of at most idChunk, each with its
// "$k, $k+1, …" placeholders numbered after first.
func eachChunk(ids []int64, first int, fn func(ph string, args []any) error) error {
	for len(ids) > 0 {
		n := min(len(ids), idChunk)
		ph := make([]string, n)
		args := make([]any, n)
		for i, id := range ids[:n] {
			ph[i] = "$" + strconv.Itoa(first+i+1)
			args[i] = id
		}
		if err := fn(strings.Join(ph, ", "), args); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// MarkSentMany records that the rows ids were delivered at at (zero: now),
// in one statement per few hundred rows; on a Store, all of them in one
// transaction. Ids that no longer exist (dropped meanwhile) are skipped.
func (c *conn) MarkSentMany(ctx context.Context, ids []int64, at time.Time) error {
	at = orNow(at)
	err := c.atomic(ctx, func(c *conn) error {
		return eachChunk(ids, 1, func(ph string, args []any) error {
			_, err := c.exec(ctx, `UPDATE outbox SET status = 'sent', sent_at = $1, last_error = '', claimed_until = NULL WHERE id IN (`+ph+`)`,
				append([]any{c.d.tm(at)}, args...)...)
			return err
		})
	})
	if err != nil {
		return fail(fmt.Sprintf("mark %d outbox rows sent", len(ids)), err)
	}
	return nil
}

// RenewOutbox extends the lease of claimed rows ids to until, for a
// claimer still working on them. Rows that are no longer pending (marked
// meanwhile) are left alone. It returns how many rows it renewed.
func (c *conn) RenewOutbox(ctx context.Context, ids []int64, until time.Time) (int, error) {
	return c.setDue(ctx, ids, until, true)
}

// ReleaseOutbox gives claimed rows ids back unsent, due at due, without
// using an attempt (a claimer stopping, or pausing for a relay outage):
// nobody holds them any more. Rows that are no longer pending are left
// alone. It returns how many rows it released.
func (c *conn) ReleaseOutbox(ctx context.Context, ids []int64, due time.Time) (int, error) {
	return c.setDue(ctx, ids, due, false)
}

func (c *conn) setDue(ctx context.Context, ids []int64, due time.Time, held bool) (int, error) {
	n := 0
	claim := "NULL"
	if held {
		claim = "$1"
	}
	err := c.atomic(ctx, func(c *conn) error {
		return eachChunk(ids, 1, func(ph string, args []any) error {
			res, err := c.exec(ctx, `UPDATE outbox SET next_attempt = $1, claimed_until = `+claim+` WHERE status = 'pending' AND id IN (`+ph+`)`,
				append([]any{c.d.tm(due)}, args...)...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			n += int(k)
			return err
		})
	})
	if err != nil {
		if held {
			return 0, fail("renew outbox leases", err)
		}
		return 0, fail("release outbox rows", err)
	}
	return n, nil
}

// NextOutboxDue returns when the earliest pending row is due (a claimed
// row: when its lease ends); ok is false when nothing is pending.
func (c *conn) NextOutboxDue(ctx context.Context) (due time.Time, ok bool, err error) {
	var n int
	if err := c.get(ctx, `SELECT COUNT(*) FROM outbox WHERE status = 'pending'`, nil, &n); err != nil || n == 0 {
		if err != nil {
			return time.Time{}, false, fail("next outbox due", err)
		}
		return time.Time{}, false, nil
	}
	if err := c.get(ctx, `SELECT MIN(next_attempt) FROM outbox WHERE status = 'pending'`, nil, timeCol{&due}); err != nil {
		return time.Time{}, false, fail("next outbox due", err)
	}
	return due, !due.IsZero(), nil
}

// OutboxSelection names rows for RetryOutbox and DropOutbox: the rows IDs,
// or every row with Status; one of the two.
type OutboxSelection struct {
	IDs    []int64
	Status string
}

func (s OutboxSelection) where(first int) (string, []any, error) {
	switch {
	case len(s.IDs) > 0 && s.Status != "":
		return "", nil, errors.New("select rows by ids or by status, not both")
	case s.Status != "":
		if s.Status != OutboxPending && s.Status != OutboxSent && s.Status != OutboxFailed {
			return "", nil, fmt.Errorf("unknown status %q", s.Status)
		}
		return `status = $` + strconv.Itoa(first+1), []any{s.Status}, nil
	case len(s.IDs) > idChunk:
		return "", nil, fmt.Errorf("at most %d ids at once", idChunk)
	case len(s.IDs) > 0:
		var where string
		var args []any
		_ = eachChunk(s.IDs, first, func(ph string, a []any) error { where, args = `id IN (`+ph+`)`, a; return nil })
		return where, args, nil
	}
	return "", nil, errors.New("no rows selected")
}

// RetryOutbox puts the selected rows back in the queue, due now, with a
// fresh count of attempts (so a row given up after outgoing.max_attempts
// gets as many again); last_error is kept until the next attempt. It
// returns the rows it changed, oldest first, without Payload. A sent row
// is sent again only when named by id or with Status "sent": an operator's
// explicit wish. A row a notifier holds now (claimed, its lease not over)
// is left alone: it is being sent, and resetting it would let another
// process send it too.
func (c *conn) RetryOutbox(ctx context.Context, sel OutboxSelection) ([]Outbox, error) {
	where, args, err := sel.where(1)
	if err != nil {
		return nil, fail("retry outbox", err)
	}
	out, err := c.outboxRows(ctx, `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt = $1, sent_at = NULL, claimed_until = NULL
		WHERE (claimed_until IS NULL OR claimed_until <= $1) AND `+where+
		` RETURNING `+outboxCols, append([]any{c.d.tm(now())}, args...), false)
	if err != nil {
		return nil, fail("retry outbox", err)
	}
	sortByID(out)
	return out, nil
}

// DropOutbox deletes the selected rows: they are never sent (again) and
// leave the queue's history. It returns the rows it deleted, oldest first,
// without Payload. A worker holding a dropped row may still send it; its
// outcome is then not recorded.
func (c *conn) DropOutbox(ctx context.Context, sel OutboxSelection) ([]Outbox, error) {
	where, args, err := sel.where(0)
	if err != nil {
		return nil, fail("drop outbox", err)
	}
	out, err := c.outboxRows(ctx, `DELETE FROM outbox WHERE `+where+` RETURNING `+outboxCols, args, false)
	if err != nil {
		return nil, fail("drop outbox", err)
	}
	sortByID(out)
	return out, nil
}
