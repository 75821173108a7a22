package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Writes that wait (PostgreSQL transactions only).
//
// The last writes of a filed mail (its journal entries, nosy additions,
// notifications) need nothing back from the database. On PostgreSQL each
// was a statement of its own, with its round trip for trackerd and the
// server alike. The …Later methods queue such writes on the transaction
// instead; the queue goes to the database as one statement
// (data-modifying WITH clauses over unnested arrays) just before the
// transaction's next statement of any kind, or its commit. So every
// statement, read or write, sees every write queued before it, in the
// order the caller made them, and only the round trips change.
//
// The archive rows of InsertInboundLater wait longer: until the commit
// (docs/notes/issue-4-speed-5.md). A mail's archive row is written once,
// with its outcome, instead of inserted as "received" and updated at the
// end; the rows of a whole group commit go in one statement. Their ids
// come from the table's sequence beforehand (ReserveInbound), and the
// foreign keys that point at inbound are checked at commit (migration
// 0013). Statements of the transaction do not see these rows.
//
// The price: a queued write's own failure (a foreign key, the server
// gone) is returned by the statement that sends the queue, or by the
// commit, not by the …Later call. The …Later methods therefore check what
// they can at once, and suit callers for whom any such failure fails the
// whole transaction anyway. Savepoint sends the queue (not the archive
// rows) before it sets its savepoint and drops what fn queued when fn
// fails, so a rolled back savepoint takes its queued writes with it.
// Outside a PostgreSQL transaction (the Store itself, SQLite) each
// …Later method is its immediate twin.
// Each method keeps a copy of what it was given: the caller may reuse
// its structs at once (an archive row's Raw is kept, not copied: it must
// not change until the transaction ends).
type later struct {
	changes []Change
	nosy    [][2]int64 // issue id, user id
	outbox  []Outbox
	archive []Inbound // sent at commit
	ids     []int64   // reserved archive ids, for InsertInboundLater
	pool    *idPool   // the Store's, where ReserveInbound takes them
}

// queued is what l holds for the next statement: all but the archive
// rows; nil when that is nothing (the common case, before every
// statement). clear forgets it.
func (l *later) queued() *later {
	if len(l.changes)+len(l.nosy)+len(l.outbox) == 0 {
		return nil
	}
	return &later{changes: l.changes, nosy: l.nosy, outbox: l.outbox}
}

func (l *later) clear() { l.changes, l.nosy, l.outbox = nil, nil, nil }

// drop forgets what was queued after mark (the archive rows held then).
func (l *later) drop(mark int) {
	*l = later{archive: l.archive[:mark], ids: l.ids, pool: l.pool}
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

// ReserveInbound readies n archive ids from the inbound table's sequence
// for the InsertInboundLater calls to come (on a PostgreSQL transaction;
// elsewhere it does nothing). The Store takes ids from the sequence
// idBlock at a time and hands them out in order, so most group commits
// need no statement for theirs. Ids taken and not used are never used:
// the archive's ids have gaps (a stopped process leaves up to a block),
// as any sequence's do after a rollback.
func (c *conn) ReserveInbound(ctx context.Context, n int) error {
	if c.later == nil || n <= 0 {
		return nil
	}
	ids, err := c.later.pool.take(n, func(m int) ([]int64, error) {
		var got pq.Int64Array
		err := c.get(ctx, `SELECT array_agg(nextval(pg_get_serial_sequence('inbound', 'id'))) FROM generate_series(1, $1)`,
			[]any{m}, &got)
		return got, err
	})
	if err != nil {
		return fail("reserve inbound ids", err)
	}
	c.later.ids = append(c.later.ids, ids...)
	return nil
}

// idBlock is how many archive ids the Store takes from the sequence at
// a time: a few group commits' worth.
const idBlock = 64

// idPool is the Store's archive ids taken from the sequence and not yet
// handed out.
type idPool struct {
	mu  sync.Mutex
	ids []int64
}

// take returns n ids, fetching more with fetch(m) first when the pool
// holds fewer. The pool's lock is held meanwhile, so ids go out in the
// order the sequence gave them.
func (p *idPool) take(n int, fetch func(m int) ([]int64, error)) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) < n {
		got, err := fetch(max(n-len(p.ids), idBlock))
		if err != nil {
			return nil, err
		}
		p.ids = append(p.ids, got...)
	}
	ids := slices.Clone(p.ids[:n])
	p.ids = p.ids[n:]
	return ids, nil
}

// InsertInboundLater is InsertInbound, except that on a PostgreSQL
// transaction the row is written at commit, with whatever
// UpdateInboundLater made of it by then; its ID is set at once, from
// those ReserveInbound took (or from a reservation of its own).
func (c *conn) InsertInboundLater(ctx context.Context, in *Inbound) error {
	if c.later == nil {
		return c.InsertInbound(ctx, in)
	}
	row, err := readyInbound(in)
	if err != nil {
		return err
	}
	if len(c.later.ids) == 0 {
		if err := c.ReserveInbound(ctx, 1); err != nil {
			return err
		}
	}
	row.ID, c.later.ids = c.later.ids[0], c.later.ids[1:]
	row.EnvelopeTo = append([]string(nil), in.EnvelopeTo...)
	c.later.archive = append(c.later.archive, row)
	in.ID, in.Received, in.SHA256, in.Status = row.ID, row.Received, row.SHA256, row.Status
	return nil
}

// UpdateInboundLater is UpdateInbound. A row InsertInboundLater holds
// takes the outcome without a statement of its own; any other row is
// updated at once.
func (c *conn) UpdateInboundLater(ctx context.Context, in *Inbound) error {
	if c.later == nil {
		return c.UpdateInbound(ctx, in)
	}
	for i := range c.later.archive {
		if row := &c.later.archive[i]; row.ID == in.ID {
			if !validInboundStatus(in.Status) {
				return fail("update inbound", fmt.Errorf("unknown status %q", in.Status))
			}
			row.Status, row.Reason, row.IssueID, row.MsgID, row.MessageID = in.Status, in.Reason, in.IssueID, in.MsgID, in.MessageID
			return nil
		}
	}
	return c.UpdateInbound(ctx, in)
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

// send sends the queued writes, if any, in one statement, and empties
// the queue (also when the statement fails: the transaction has failed
// then). Every statement of a transaction goes through it first (flush,
// when it does not go with them: pipeline.go); the archive rows go only
// when commit is set (Store.Tx, before COMMIT).
func (c *conn) send(ctx context.Context, commit bool) error {
	l := c.later
	if l == nil || !commit && len(l.changes)+len(l.nosy)+len(l.outbox) == 0 {
		return nil // before every statement: most find nothing queued
	}
	q := l.queued()
	l.clear()
	if !commit {
		return c.write(ctx, q)
	}
	if q == nil {
		q = &later{}
	}
	// The archive rows go in statements of at most archiveChunk bytes of
	// raw mail (a larger mail alone), the first with the rest of the
	// queue: a group commit of big mails must stay far below PostgreSQL's
	// limit on one message.
	archive := l.archive
	l.archive = nil
	for {
		n, size := 0, 0
		for n < len(archive) && (n == 0 || size+len(archive[n].Raw) <= archiveChunk) {
			size += len(archive[n].Raw)
			n++
		}
		q.archive, archive = archive[:n], archive[n:]
		if err := c.write(ctx, q); err != nil || len(archive) == 0 {
			return err
		}
		q = &later{}
	}
}

// archiveChunk bounds the raw bytes of the archive rows one statement
// writes (their hex form is twice that); a variable for the tests.
var archiveChunk = 8 << 20

// write writes what l holds in one statement (none when l is empty).
func (c *conn) write(ctx context.Context, l *later) error {
	query, a, ok := l.statement()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// Only the archive chunks of a commit find statements still waiting
	// here (pipeline.go).
	if q, ok, err := c.merge(ctx, nil, query, a); err != nil || ok {
		if err == nil {
			_, err = c.pipe.tx.ExecContext(ctx, q)
		}
		if err != nil {
			return fail("queued writes", err)
		}
		return nil
	}
	if err := c.flush(ctx); err != nil {
		return err
	}
	if _, err := c.q.ExecContext(ctx, query, a...); err != nil {
		return fail("queued writes", err)
	}
	return nil
}

// statement is the one statement that writes what l holds: one INSERT
// per table, the last the statement itself and the others in WITH
// clauses before it. It returns no rows. ok is false when l is empty.
func (l *later) statement() (query string, a args, ok bool) {
	if l == nil {
		return "", nil, false
	}
	changes, nosy, outbox, archive := l.changes, l.nosy, l.outbox, l.archive
	if len(changes)+len(nosy)+len(outbox)+len(archive) == 0 {
		return "", nil, false
	}
	var inserts []string
	part := func(insert string) { inserts = append(inserts, insert) }
	if len(changes) > 0 {
		var issue, msg, actor pq.Int64Array
		var at, prop, old, nu pq.StringArray
		for _, ch := range changes {
			issue, msg, actor = append(issue, ch.IssueID), append(msg, ch.MessageID), append(actor, ch.ActorID)
			at, prop, old, nu = append(at, pgTime(ch.At)), append(prop, ch.Property), append(old, ch.Old), append(nu, ch.New)
		}
		// WITH ORDINALITY and ORDER BY number the rows in the order
		// given, as AddChanges does.
		part(`INSERT INTO changes (issue_id, message_id, actor_id, at, property, old_value, new_value)
			SELECT i, NULLIF(m, 0), NULLIF(a, 0), t::timestamptz, p, o, n
			FROM unnest(` + a.add(issue) + `::bigint[], ` + a.add(msg) + `::bigint[], ` + a.add(actor) + `::bigint[], ` + a.add(at) + `::text[], ` +
			a.add(prop) + `::text[], ` + a.add(old) + `::text[], ` + a.add(nu) + `::text[]) WITH ORDINALITY AS u(i, m, a, t, p, o, n, ord)
			ORDER BY ord`)
	}
	if len(nosy) > 0 {
		var issue, user pq.Int64Array
		for _, p := range nosy {
			issue, user = append(issue, p[0]), append(user, p[1])
		}
		part(`INSERT INTO nosy (issue_id, user_id) SELECT * FROM unnest(` + a.add(issue) + `::bigint[], ` +
			a.add(user) + `::bigint[]) ON CONFLICT DO NOTHING`)
	}
	if len(outbox) > 0 {
		var kind, recip, status, next, lastErr, sent, created pq.StringArray
		var issue, msg, attempts pq.Int64Array
		var payload pq.ByteaArray
		for _, o := range outbox {
			kind, recip, status = append(kind, o.Kind), append(recip, o.Recipient), append(status, o.Status)
			next, lastErr, sent, created = append(next, pgTime(o.NextAttempt)), append(lastErr, o.LastError), append(sent, pgTime(o.SentAt)), append(created, pgTime(o.Created))
			issue, msg, attempts = append(issue, o.IssueID), append(msg, o.MsgID), append(attempts, int64(o.Attempts))
			payload = append(payload, nonNil(o.Payload))
		}
		part(`INSERT INTO outbox (kind, issue_id, msg_id, recipient, payload, status, attempts, next_attempt, last_error, sent_at, created)
			SELECT k, NULLIF(i, 0), NULLIF(m, 0), r, p, s, a, nx::timestamptz, e, NULLIF(st, '')::timestamptz, cr::timestamptz
			FROM unnest(` + a.add(kind) + `::text[], ` + a.add(issue) + `::bigint[], ` + a.add(msg) + `::bigint[], ` + a.add(recip) + `::text[], ` +
			a.add(payload) + `::bytea[], ` + a.add(status) + `::text[], ` + a.add(attempts) + `::bigint[], ` + a.add(next) + `::text[], ` +
			a.add(lastErr) + `::text[], ` + a.add(sent) + `::text[], ` + a.add(created) + `::text[]) WITH ORDINALITY AS u(k, i, m, r, p, s, a, nx, e, st, cr, ord)
			ORDER BY ord`)
	}
	if len(archive) > 0 {
		var id, issue, msg pq.Int64Array
		var received, source, from, to, sha, msgID, status, reason pq.StringArray
		var raw pq.ByteaArray
		for _, in := range archive {
			id, issue, msg = append(id, in.ID), append(issue, in.IssueID), append(msg, in.MsgID)
			received, source, from, to = append(received, pgTime(in.Received)), append(source, in.Source), append(from, in.EnvelopeFrom), append(to, strings.Join(in.EnvelopeTo, "\n"))
			sha, msgID, status, reason = append(sha, in.SHA256), append(msgID, in.MessageID), append(status, in.Status), append(reason, in.Reason)
			raw = append(raw, nonNil(in.Raw))
		}
		part(`INSERT INTO inbound (id, received, source, envelope_from, envelope_to, raw, sha256, message_id, status, reason, issue_id, msg_id)
			SELECT d, r::timestamptz, s, f, t, w, h, m, st, re, NULLIF(i, 0), NULLIF(g, 0)
			FROM unnest(` + a.add(id) + `::bigint[], ` + a.add(received) + `::text[], ` + a.add(source) + `::text[], ` + a.add(from) + `::text[], ` +
			a.add(to) + `::text[], ` + a.add(raw) + `::bytea[], ` + a.add(sha) + `::text[], ` + a.add(msgID) + `::text[], ` + a.add(status) + `::text[], ` +
			a.add(reason) + `::text[], ` + a.add(issue) + `::bigint[], ` + a.add(msg) + `::bigint[]) AS u(d, r, s, f, t, w, h, m, st, re, i, g)`)
	}
	query = inserts[len(inserts)-1]
	if n := len(inserts) - 1; n > 0 {
		ctes := make([]string, n)
		for i, ins := range inserts[:n] {
			ctes[i] = "w" + strconv.Itoa(i) + " AS (" + ins + ")"
		}
		query = "WITH " + strings.Join(ctes, ", ") + " " + query
	}
	return query, a, true
}

// pgTime is t as PostgreSQL text for a timestamptz, "" for zero.
func pgTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.999999Z")
}
