package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Writes that wait (PostgreSQL transactions only).
//
// The last writes of a filed mail (its journal entries, nosy additions,
// notifications, the filed and archive rows' outcome) need nothing back
// from the database. On PostgreSQL each was a statement of its own, with
// its round trip for trackerd and the server alike. The …Later methods
// queue such writes on the transaction instead; the queue goes to
// the database as one statement (data-modifying WITH clauses over
// unnested arrays) just before the transaction's next statement of any
// kind, or its commit. So every statement, read or write, sees every
// write queued before it, in the order the caller made them, and only
// the round trips change: on the listener's benchmark a new issue's four
// last writes cost PostgreSQL the same sent as one (175 against 182 µs,
// pg_stat_statements; the rows' own work, indexes and foreign keys, stays)
// and the machine ≈60 µs of CPU less per mail.
//
// The price: a queued write's own failure (a missing row, a foreign key,
// the server gone) is returned by the statement that sends the queue, or
// by the commit, not by the …Later call. The …Later methods therefore
// check what they can at once, and suit callers for whom any such failure
// fails the whole transaction anyway. Savepoint sends the queue before it
// sets its savepoint and drops what fn queued when fn fails, so a rolled
// back savepoint takes its queued writes with it. Outside a PostgreSQL
// transaction (the Store itself, SQLite) each …Later method is its
// immediate twin.
// Each method keeps a copy of what it was given: the caller may reuse
// its structs at once.
type later struct {
	changes []Change
	nosy    [][2]int64 // issue id, user id
	filed   []filedOutcome
	inbound []Inbound
	outbox  []Outbox
}

type filedOutcome struct {
	messageID                string
	authorID, issueID, msgID int64
}

func (l *later) empty() bool {
	return len(l.changes)+len(l.nosy)+len(l.filed)+len(l.inbound)+len(l.outbox) == 0
}

// AddChangesLater is AddChanges for a caller that does not need the IDs
// (they stay 0 where the write waits); At defaults to now.
func (c *conn) AddChangesLater(ctx context.Context, chs []*Change) error {
	if c.later == nil {
		return c.AddChanges(ctx, chs)
	}
	for _, ch := range chs {
		ch.At = orNow(ch.At)
		c.later.changes = append(c.later.changes, *ch)
	}
	return nil
}

// AddNosyLater is AddNosy without its answers: whether the user was on
// the list already is not reported, and a missing issue or user fails
// the statement that sends the queue.
func (c *conn) AddNosyLater(ctx context.Context, issueID, userID int64) error {
	if c.later == nil {
		_, err := c.AddNosy(ctx, issueID, userID)
		return err
	}
	pair := [2]int64{issueID, userID}
	for _, p := range c.later.nosy {
		if p == pair {
			return nil
		}
	}
	c.later.nosy = append(c.later.nosy, pair)
	return nil
}

// UpdateFiledLater is UpdateFiled; a missing row fails the statement that
// sends the queue. A second outcome for the same mail replaces the first.
func (c *conn) UpdateFiledLater(ctx context.Context, messageID string, authorID, issueID, msgID int64) error {
	if c.later == nil {
		return c.UpdateFiled(ctx, messageID, authorID, issueID, msgID)
	}
	c.later.filed = replaceOrAppend(c.later.filed, filedOutcome{messageID, authorID, issueID, msgID},
		func(old filedOutcome) bool { return old.messageID == messageID && old.authorID == authorID })
	return nil
}

// UpdateInboundLater is UpdateInbound; a missing row fails the statement
// that sends the queue. A second update of the same row replaces the
// first.
func (c *conn) UpdateInboundLater(ctx context.Context, in *Inbound) error {
	if c.later == nil {
		return c.UpdateInbound(ctx, in)
	}
	if !validInboundStatus(in.Status) {
		return fail("update inbound", fmt.Errorf("unknown status %q", in.Status))
	}
	c.later.inbound = replaceOrAppend(c.later.inbound,
		Inbound{ID: in.ID, Status: in.Status, Reason: in.Reason, IssueID: in.IssueID, MsgID: in.MsgID, MessageID: in.MessageID},
		func(old Inbound) bool { return old.ID == in.ID })
	return nil
}

// EnqueueLater is Enqueue, except that o.ID stays 0 where the write
// waits. Created, Status and NextAttempt are set at once.
func (c *conn) EnqueueLater(ctx context.Context, o *Outbox) error {
	if c.later == nil {
		return c.Enqueue(ctx, o)
	}
	if err := o.ready(); err != nil {
		return err
	}
	c.later.outbox = append(c.later.outbox, *o)
	return nil
}

// replaceOrAppend replaces the element of l that is the same as v, or
// appends v.
func replaceOrAppend[T any](l []T, v T, same func(T) bool) []T {
	for i := range l {
		if same(l[i]) {
			l[i] = v
			return l
		}
	}
	return append(l, v)
}

// sendLater sends the queued writes, if any, in one statement, and empties
// the queue (also when the statement fails: the transaction has failed
// then). Every statement of a transaction goes through it first.
func (c *conn) sendLater(ctx context.Context) error {
	if c.later == nil || c.later.empty() {
		return nil
	}
	l := *c.later
	*c.later = later{}
	var a args
	var with []string
	// Updates of rows that must exist are counted, as affected does.
	var checks, what []string
	if len(l.changes) > 0 {
		var issue, msg, actor pq.Int64Array
		var at, prop, old, nu pq.StringArray
		for _, ch := range l.changes {
			issue, msg, actor = append(issue, ch.IssueID), append(msg, ch.MessageID), append(actor, ch.ActorID)
			at, prop, old, nu = append(at, pgTime(ch.At)), append(prop, ch.Property), append(old, ch.Old), append(nu, ch.New)
		}
		// WITH ORDINALITY and ORDER BY number the rows in the order
		// given, as AddChanges does.
		with = append(with, `c AS (INSERT INTO changes (issue_id, message_id, actor_id, at, property, old_value, new_value)
			SELECT i, NULLIF(m, 0), NULLIF(a, 0), t::timestamptz, p, o, n
			FROM unnest(`+a.add(issue)+`::bigint[], `+a.add(msg)+`::bigint[], `+a.add(actor)+`::bigint[], `+a.add(at)+`::text[], `+
			a.add(prop)+`::text[], `+a.add(old)+`::text[], `+a.add(nu)+`::text[]) WITH ORDINALITY AS u(i, m, a, t, p, o, n, ord)
			ORDER BY ord)`)
	}
	if len(l.nosy) > 0 {
		var issue, user pq.Int64Array
		for _, p := range l.nosy {
			issue, user = append(issue, p[0]), append(user, p[1])
		}
		with = append(with, `n AS (INSERT INTO nosy (issue_id, user_id) SELECT * FROM unnest(`+a.add(issue)+`::bigint[], `+
			a.add(user)+`::bigint[]) ON CONFLICT DO NOTHING)`)
	}
	// Updates go row by row, each by its key: an UPDATE … FROM unnest
	// gets a generic plan that, made while the table was small, scans it
	// whole for the life of the connection.
	for i, f := range l.filed {
		name := "f" + strconv.Itoa(i)
		with = append(with, name+` AS (`+updateFiled(&a, f.messageID, f.authorID, f.issueID, f.msgID)+` RETURNING 1)`)
		checks, what = append(checks, `(SELECT COUNT(*) FROM `+name+`)`), append(what, "filed "+f.messageID)
	}
	for i := range l.inbound {
		in := &l.inbound[i]
		name := "b" + strconv.Itoa(i)
		with = append(with, name+` AS (`+updateInbound(&a, in)+` RETURNING 1)`)
		checks, what = append(checks, `(SELECT COUNT(*) FROM `+name+`)`), append(what, "inbound "+strconv.FormatInt(in.ID, 10))
	}
	if len(l.outbox) > 0 {
		var kind, recip, status, next, lastErr, sent, created pq.StringArray
		var issue, msg, attempts pq.Int64Array
		var payload pq.ByteaArray
		for _, o := range l.outbox {
			kind, recip, status = append(kind, o.Kind), append(recip, o.Recipient), append(status, o.Status)
			next, lastErr, sent, created = append(next, pgTime(o.NextAttempt)), append(lastErr, o.LastError), append(sent, pgTime(o.SentAt)), append(created, pgTime(o.Created))
			issue, msg, attempts = append(issue, o.IssueID), append(msg, o.MsgID), append(attempts, int64(o.Attempts))
			payload = append(payload, nonNil(o.Payload))
		}
		with = append(with, `o AS (INSERT INTO outbox (kind, issue_id, msg_id, recipient, payload, status, attempts, next_attempt, last_error, sent_at, created)
			SELECT k, NULLIF(i, 0), NULLIF(m, 0), r, p, s, a, nx::timestamptz, e, NULLIF(st, '')::timestamptz, cr::timestamptz
			FROM unnest(`+a.add(kind)+`::text[], `+a.add(issue)+`::bigint[], `+a.add(msg)+`::bigint[], `+a.add(recip)+`::text[], `+
			a.add(payload)+`::bytea[], `+a.add(status)+`::text[], `+a.add(attempts)+`::bigint[], `+a.add(next)+`::text[], `+
			a.add(lastErr)+`::text[], `+a.add(sent)+`::text[], `+a.add(created)+`::text[]) WITH ORDINALITY AS u(k, i, m, r, p, s, a, nx, e, st, cr, ord)
			ORDER BY ord)`)
	}
	got := make([]int, len(checks))
	dest := make([]any, len(checks))
	for i := range got {
		dest[i] = &got[i]
	}
	sel := strings.Join(checks, ", ")
	if sel == "" {
		sel = "1"
		dest = []any{new(int)}
	}
	if err := c.get(ctx, `WITH `+strings.Join(with, ", ")+` SELECT `+sel, a, dest...); err != nil {
		return fail("queued writes", err)
	}
	for i, n := range got {
		if n != 1 {
			return fail("queued writes: update "+what[i], ErrNotFound)
		}
	}
	return nil
}

// pgTime is t as PostgreSQL text for a timestamptz, "" for zero.
func pgTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.999999Z")
}
