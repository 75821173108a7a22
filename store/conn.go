package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn carries the data methods shared by Store and Tx, which embed it.
type conn struct {
	q       querier
	db      *sql.DB // set on the Store's conn only: atomic opens a transaction on it
	d       dialect
	timeout time.Duration
	// fts collects rows to index at commit; set on SQLite transactions.
	fts *ftsPending
	// later queues writes for the next statement, and pipe holds what
	// waits to go with it; both set on PostgreSQL transactions (later.go,
	// pipeline.go).
	later *later
	pipe  *pipeline
}

// merge is pipeline.merge on c's transaction, with the writes l queued
// (c.later, or nil for none).
func (c *conn) merge(ctx context.Context, l *later, query string, args []any) (string, bool, error) {
	if c.pipe == nil {
		return "", false, nil
	}
	return c.pipe.merge(ctx, l, query, args)
}

// flush sends what waits before the next statement: the pipeline's
// statements, then the queued writes.
func (c *conn) flush(ctx context.Context) error {
	if c.pipe != nil && len(c.pipe.pending) > 0 {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := c.pipe.flush(ctx, c)
		cancel()
		if err != nil {
			return fail("statements waiting", err)
		}
	}
	return c.send(ctx, false)
}

// exec runs one statement under the per-query timeout.
func (c *conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if q, ok, err := c.merge(ctx, c.later, query, args); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return c.pipe.tx.ExecContext(ctx, q)
	}
	if err := c.flush(ctx); err != nil {
		return nil, err
	}
	return c.q.ExecContext(ctx, query, args...)
}

// get runs a query expected to return one row and scans it into dest.
// sql.ErrNoRows passes through for the caller to interpret.
func (c *conn) get(ctx context.Context, query string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if q, ok, err := c.merge(ctx, c.later, query, args); err != nil || ok {
		if err != nil {
			return err
		}
		return c.pipe.tx.QueryRowContext(ctx, q).Scan(dest...)
	}
	if err := c.flush(ctx); err != nil {
		return err
	}
	return c.q.QueryRowContext(ctx, query, args...).Scan(dest...)
}

// each runs a query and calls fn for every row, all under one per-query
// timeout.
func (c *conn) each(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rows *sql.Rows
	q, ok, err := c.merge(ctx, c.later, query, args)
	switch {
	case err != nil:
	case ok:
		rows, err = c.pipe.tx.QueryContext(ctx, q)
	default:
		if err = c.flush(ctx); err == nil {
			rows, err = c.q.QueryContext(ctx, query, args...)
		}
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// affected runs a write and returns ErrNotFound when it matched no row.
func (c *conn) affected(ctx context.Context, query string, args ...any) error {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// atomic runs fn as one unit. On the Store's conn it opens a transaction
// (so a method of several statements is all or nothing); on a Tx's conn the
// caller's transaction is the unit and fn runs directly in it.
func (c *conn) atomic(ctx context.Context, fn func(c *conn) error) error {
	if c.db == nil {
		return fn(c)
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	sub := &conn{q: tx, d: c.d, timeout: c.timeout}
	if c.d == sqliteDialect {
		sub.fts = &ftsPending{}
	}
	if err := fn(sub); err != nil {
		return err
	}
	if sub.fts != nil {
		if err := sub.fts.flush(ctx, sub); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// fail wraps err with what the store was doing: "store: OP: …". A missing
// row becomes ErrNotFound and a unique violation ErrDuplicate (with the
// driver's text, for the log); other driver errors are wrapped as they are.
func fail(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.Is(err, ErrNotFound):
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	case errors.Is(err, ErrDuplicate):
		return fmt.Errorf("store: %s: %w", op, err)
	case isUniqueViolation(err):
		return fmt.Errorf("store: %s: %w (%v)", op, ErrDuplicate, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// now is the current time as the store keeps it.
func now() time.Time { return norm(time.Now()) }

// norm is t in UTC, truncated to what both databases keep (microseconds).
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// orNow is norm(t), or now when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return norm(t)
}

// tm is t as a query argument for this dialect; a zero time is NULL.
func (d dialect) tm(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = norm(t)
	if d == sqliteDialect {
		return t.UnixMicro()
	}
	return t
}

// timeCol scans a time column of either representation into *t (UTC);
// NULL scans as the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

// idCol scans a nullable id; NULL scans as 0.
type idCol struct{ p *int64 }

func (c idCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = 0
	case int64:
		*c.p = v
	default:
		return fmt.Errorf("store: cannot scan %T into an id", src)
	}
	return nil
}

// nullID is id as a query argument, 0 being NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// nonNil returns b, or an empty slice for nil: a nil []byte is NULL to both
// drivers, and blob columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// limitArg is a LIMIT argument: n, or no limit for n <= 0. Both databases
// accept the largest int64 where SQLite has no LIMIT ALL.
func limitArg(n int) int64 {
	if n <= 0 {
		return math.MaxInt64
	}
	return int64(n)
}

// args builds a list of query arguments and their $N placeholders.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// list appends every value and returns "$i, $j, …".
func (a *args) list(vs []string) string {
	ps := make([]string, len(vs))
	for i, v := range vs {
		ps[i] = a.add(v)
	}
	return strings.Join(ps, ", ")
}

// splitList is the inverse of strings.Join(list, sep), "" being empty.
func splitList(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

// preparedTx is a *sql.Tx that prepares each distinct statement once and
// reuses it for the rest of the transaction. modernc SQLite parses every
// statement it runs, and a group commit of a few hundred mails runs the
// same few dozen statements over and over: preparing them once took
// parsing off about a third of ingest CPU. On PostgreSQL it also spares the
// server parsing and planning each statement again for every mail of a
// group commit (the listener's PostgreSQL ingest went from about 520 to 740
// mails/s with it).
//
// A statement the store has seen before comes from its stmtCache: then it
// is prepared once per connection, not once per transaction (with five
// PostgreSQL committers a batch holds about four mails, and preparing a
// dozen statements for every batch was three round trips per mail). The
// statements a transaction had to prepare itself are noted in missed, for
// Store.Tx to add to the cache once the transaction is over.
type preparedTx struct {
	tx     *sql.Tx
	cache  *stmtCache
	stmts  map[string]*sql.Stmt
	missed []string
}

func (p *preparedTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := p.stmts[query]; ok {
		return s, nil
	}
	if shared := p.cache.get(query); shared != nil {
		// Reuses the statement if it is already prepared on this
		// transaction's connection, else prepares it there and keeps it.
		s := p.tx.StmtContext(ctx, shared)
		p.stmts[query] = s
		return s, nil
	}
	s, err := p.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.stmts[query] = s
	p.missed = append(p.missed, query)
	return s, nil
}

// stmtCacheMax bounds the statements kept prepared (per connection). The
// store writes with a few dozen distinct statements; a statement built
// for a varying number of rows counts once per row count.
const stmtCacheMax = 256

// stmtCache holds statements prepared on the database, shared by all
// transactions: database/sql prepares each on a connection the first time
// a transaction there uses it, and keeps it for the connection's life.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// add prepares the queries not yet cached, while there is room. It is
// called after a transaction ends, so that preparing on the database (which
// takes a connection of the pool) never waits while that transaction holds
// one. A query that fails to prepare is left out: it is prepared per
// transaction, as before, and its error shows there; when the database
// stops answering, the rest wait for the next transaction.
func (c *stmtCache) add(ctx context.Context, db *sql.DB, queries []string) {
	for _, q := range queries {
		c.mu.Lock()
		_, have := c.m[q]
		full := len(c.m) >= stmtCacheMax
		c.mu.Unlock()
		if have || full {
			continue
		}
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return // the database does not answer: the next transaction tries again
			}
			continue
		}
		c.mu.Lock()
		if _, have := c.m[q]; have || len(c.m) >= stmtCacheMax {
			s.Close()
		} else {
			c.m[q] = s
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.m {
		s.Close()
		delete(c.m, q)
	}
}

func (p *preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (p *preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (p *preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := p.stmt(ctx, query)
	if err != nil {
		// A *sql.Row cannot carry an error from outside; run the query
		// unprepared, which reports the same error at Scan.
		return p.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// ftsPending remembers the ids of the issues and messages a SQLite
// transaction inserted, so that its commit adds them to the FTS5 index
// in one statement each (see migrations 0003 and 0010). SQLite has one writer at a
// time and AUTOINCREMENT ids only grow, so every row from the first id a
// transaction inserted to the last is its own; rows a savepoint rolled
// back are simply not there to index.
type ftsPending struct {
	issueMin, issueMax, msgMin, msgMax int64
}

func (p *ftsPending) issue(id int64) {
	if p.issueMin == 0 || id < p.issueMin {
		p.issueMin = id
	}
	p.issueMax = max(p.issueMax, id)
}

func (p *ftsPending) message(id int64) {
	if p.msgMin == 0 || id < p.msgMin {
		p.msgMin = id
	}
	p.msgMax = max(p.msgMax, id)
}

// flush indexes the pending rows inside the transaction c runs in.
func (p *ftsPending) flush(ctx context.Context, c *conn) error {
	if p.issueMin != 0 {
		if _, err := c.exec(ctx, `INSERT INTO search_fts (rowid, text) SELECT id << 32, title FROM issues WHERE id BETWEEN $1 AND $2`,
			p.issueMin, p.issueMax); err != nil {
			return fmt.Errorf("index issues: %w", err)
		}
	}
	if p.msgMin != 0 {
		if _, err := c.exec(ctx, `INSERT INTO search_fts (rowid, text) SELECT (issue_id << 32) | id, content FROM messages WHERE id BETWEEN $1 AND $2`,
			p.msgMin, p.msgMax); err != nil {
			return fmt.Errorf("index messages: %w", err)
		}
	}
	*p = ftsPending{}
	return nil
}
