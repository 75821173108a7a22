package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"
)

// Statements that wait for the next one (PostgreSQL transactions only).
//
// lib/pq sends one statement per round trip. A mail of a group commit
// began with three in a row that need nothing back: the previous mail's
// queued writes (later.go), then RELEASE and SAVEPOINT, then its first
// statement (the author's lookup). Each round trip costs both trackerd
// and the server a write, a wake-up and a read. A PostgreSQL simple
// query may hold several statements and runs them in order in one round
// trip, but its statements carry no parameters, and a statement sent as
// text is parsed and planned each time (tried: no faster in all).
//
// So the transaction's connection PREPAREs such a statement once, under
// a name of its own (in a round trip of its own, the first time), and
// from then on the waiting statements and the next one go as one simple
// query:
//
//	EXECUTE trackerd_p2(E'{41}', …);
//	RELEASE SAVEPOINT trackerd_sp1;
//	SAVEPOINT trackerd_sp1;
//	EXECUTE trackerd_p1(E'bob@example.org', …)
//
// Each argument goes as the text lib/pq would have sent for it, quoted,
// so that the server reads it with the parameter's own input function,
// as it reads a text parameter. A statement whose arguments have no such
// text here (bytes, a NUL, invalid UTF-8) goes the usual way, after the
// waiting ones; the waiting ones then go on their own, as before. A
// statement that fails in a merged query fails as it would alone, at the
// same point of the transaction.
//
// pgConn knows what its session has prepared. A PREPARE that fails
// leaves it unknown which of that round trip's statements the server
// took; the connection then stops merging for good, and works as before.

// pgConnector opens lib/pq connections wrapped in pgConn.
type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{Conn: dc, prepared: map[string]string{}}, nil
}

// pgConn is a lib/pq connection and what its session has PREPAREd. Its
// methods pass through; database/sql uses a connection from one
// goroutine at a time, and so does the transaction holding it.
type pgConn struct {
	driver.Conn
	prepared map[string]string // query → name of its prepared statement
	broken   bool              // what is prepared is no longer known
}

// maxPrepared bounds the statements one session prepares for merging;
// the store merges a handful.
const maxPrepared = 64

// The interfaces of lib/pq's connection that database/sql uses.
var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.Validator          = (*pgConn)(nil)
)

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (c *pgConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *pgConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *pgConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// pipeline is what waits on a PostgreSQL transaction to go with its
// next statement, in order.
type pipeline struct {
	tx      *sql.Tx
	pc      *pgConn // nil: nothing merges (the connection is not a pgConn)
	pending []waiting
	stats   *pipeStats
}

// pipeStats counts, per Store, for tests.
type pipeStats struct {
	merged, broken atomic.Int64
}

// waiting is a statement without arguments (SAVEPOINT, RELEASE) or one
// with (queued writes).
type waiting struct {
	query string
	args  []any
}

// push adds a statement to send before the next one.
func (p *pipeline) push(query string, args []any) {
	p.pending = append(p.pending, waiting{query, args})
}

// unpush forgets the last push of query and what was pushed after it,
// if query still waits: a savepoint never sent needs no rollback. (The
// last: sibling savepoints share their name, and an earlier one may
// wait too.)
func (p *pipeline) unpush(query string) bool {
	for i := len(p.pending) - 1; i >= 0; i-- {
		if w := p.pending[i]; w.query == query && w.args == nil {
			p.pending = p.pending[:i]
			return true
		}
	}
	return false
}

// merge returns the simple query that sends what waits (the pending
// statements, then the writes l queued, if l is not nil) and then query
// with args. It reports false when nothing waits or something cannot go
// as text: then the caller sends what waits (flush) and query as usual.
// On true, what waited is taken. A statement not yet prepared on the
// connection is prepared first, in a round trip of its own: so a
// failing statement is known not to be a failing PREPARE.
func (p *pipeline) merge(ctx context.Context, l *later, query string, args []any) (string, bool, error) {
	if p.pc == nil || p.pc.broken {
		return "", false, nil
	}
	var lq string
	var la []any
	var queued bool
	if l != nil {
		lq, la, queued = l.queued().statement()
	}
	if len(p.pending) == 0 && !queued {
		return "", false, nil
	}
	var b strings.Builder
	var prepare []string
	for _, w := range p.pending {
		if !p.execute(&b, &prepare, w.query, w.args) {
			return "", false, nil
		}
	}
	if queued && !p.execute(&b, &prepare, lq, la) {
		return "", false, nil
	}
	if !p.execute(&b, &prepare, query, args) {
		return "", false, nil
	}
	if len(prepare) > 0 {
		// Named in the order execute met them.
		names := make([]string, len(prepare))
		var pb strings.Builder
		for i, q := range prepare {
			names[i] = "trackerd_p" + strconv.Itoa(len(p.pc.prepared)+i+1)
			// The newline ends a comment on the query's last line.
			pb.WriteString("PREPARE " + names[i] + " AS " + q + "\n;\n")
		}
		if _, err := p.tx.ExecContext(ctx, pb.String()); err != nil {
			// Which of them the server took is not known now.
			p.pc.broken = true
			p.stats.broken.Add(1)
			return "", false, fail("prepare", err)
		}
		for i, q := range prepare {
			p.pc.prepared[q] = names[i]
		}
	}
	p.pending = p.pending[:0]
	if queued {
		l.clear()
	}
	p.stats.merged.Add(1)
	return b.String(), true, nil
}

// execute writes one statement of the merged query to b: as it is when
// it has no arguments, else as "EXECUTE name(args)". A statement not
// prepared on the connection gets its name and goes to prepare.
func (p *pipeline) execute(b *strings.Builder, prepare *[]string, query string, args []any) bool {
	if b.Len() > 0 {
		b.WriteString(";\n")
	}
	if args == nil {
		b.WriteString(query)
		return true
	}
	name, ok := p.pc.prepared[query]
	for i := 0; !ok && i < len(*prepare); i++ {
		ok = (*prepare)[i] == query
		name = "trackerd_p" + strconv.Itoa(len(p.pc.prepared)+i+1)
	}
	if !ok {
		if len(p.pc.prepared)+len(*prepare) >= maxPrepared {
			return false
		}
		*prepare = append(*prepare, query)
		name = "trackerd_p" + strconv.Itoa(len(p.pc.prepared)+len(*prepare))
	}
	b.WriteString("EXECUTE " + name)
	if len(args) > 0 {
		b.WriteByte('(')
		for i, a := range args {
			if i > 0 {
				b.WriteString(", ")
			}
			if !literal(b, a) {
				return false
			}
		}
		b.WriteByte(')')
	}
	return true
}

// flush sends what waits, as before merging: the statements without
// arguments together as one simple query, the others prepared.
func (p *pipeline) flush(ctx context.Context, c *conn) error {
	var simple []string
	send := func() error {
		if len(simple) == 0 {
			return nil
		}
		_, err := p.tx.ExecContext(ctx, strings.Join(simple, "; "))
		simple = simple[:0]
		return err
	}
	pending := p.pending
	p.pending = nil
	for _, w := range pending {
		if w.args == nil {
			simple = append(simple, w.query)
			continue
		}
		if err := send(); err != nil {
			return err
		}
		if _, err := c.q.ExecContext(ctx, w.query, w.args...); err != nil {
			return err
		}
	}
	return send()
}

// literal writes v as a quoted literal holding the text lib/pq sends for
// it as a parameter (NULL for nil); false for a value without such text:
// bytes (lib/pq's text for them depends on the parameter's type), a
// string with a NUL (a simple query ends at one) or not UTF-8 (the
// server would refuse the whole query, not just this statement).
func literal(b *strings.Builder, v any) bool {
	v, err := driver.DefaultParameterConverter.ConvertValue(v)
	if err != nil {
		return false
	}
	var s string
	switch x := v.(type) {
	case nil:
		b.WriteString("NULL")
		return true
	case string:
		if strings.IndexByte(x, 0) >= 0 || !utf8.ValidString(x) {
			return false
		}
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case time.Time:
		s = string(pq.FormatTimestamp(x))
	default:
		return false
	}
	// An escape string: the same whatever standard_conforming_strings is.
	b.WriteString("E'")
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], `'\`)
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		b.WriteByte('\\')
		b.WriteByte(s[i+j])
		i += j + 1
	}
	b.WriteByte('\'')
	return true
}
