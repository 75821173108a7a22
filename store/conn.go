package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
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
}

// exec runs one statement under the per-query timeout.
func (c *conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.q.ExecContext(ctx, query, args...)
}

// get runs a query expected to return one row and scans it into dest.
// sql.ErrNoRows passes through for the caller to interpret.
func (c *conn) get(ctx context.Context, query string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.q.QueryRowContext(ctx, query, args...).Scan(dest...)
}

// each runs a query and calls fn for every row, all under one per-query
// timeout.
func (c *conn) each(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	rows, err := c.q.QueryContext(ctx, query, args...)
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
	if err := fn(&conn{q: tx, d: c.d, timeout: c.timeout}); err != nil {
		return err
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
