package store

import (
	"context"
	"database/sql"
	"errors"
)

// Hooks for the external tests: raw SQL, to inspect or damage a database
// the way only a test should.

// ExecRaw runs query against s's database, outside any Tx.
func ExecRaw(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, query, args...)
	return err
}

// QueryStrings returns the first column of every row of query, scanned as
// text.
func QueryStrings(ctx context.Context, s *Store, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v.String)
	}
	return out, rows.Err()
}

// TxQuery runs query on tx as the store's own reads do (get), and
// returns its first column as text: a merged statement on PostgreSQL
// when something waits (pipeline.go).
func TxQuery(ctx context.Context, tx *Tx, query string, args ...any) (string, error) {
	var v sql.NullString
	err := tx.get(ctx, query, args, &v)
	return v.String, err
}

// TxExec runs query on tx as the store's own writes do (exec).
func TxExec(ctx context.Context, tx *Tx, query string, args ...any) error {
	_, err := tx.exec(ctx, query, args...)
	return err
}

// Merged counts the simple queries s's transactions sent that carried
// waiting statements with the next one, and the connections that
// stopped merging.
func Merged(s *Store) (merged, broken int64) {
	return s.pipeStats.merged.Load(), s.pipeStats.broken.Load()
}

// TxPrepares counts the statements s's transactions have prepared for
// themselves, not taken from the statement cache.
func TxPrepares(s *Store) int64 { return s.missed.Load() }

// MigrationVersions returns the versions and file names of a driver's
// migrations, as the runner sees them.
func MigrationVersions(driver string) ([]int, []string, error) {
	d := sqliteDialect
	if driver == DriverPostgres {
		d = postgresDialect
	}
	ms, err := migrations(d)
	if err != nil {
		return nil, nil, err
	}
	var vs []int
	var names []string
	for _, m := range ms {
		vs = append(vs, m.version)
		names = append(names, m.name)
	}
	return vs, names, nil
}

// SchemaVersion is the version Open found or migrated to.
func (s *Store) SchemaVersion() int { return s.version }

// PostgresSettings returns the sslmode, application name and search_path
// Open would connect with.
func PostgresSettings(o Options) (sslmode, appName, searchPath string, err error) {
	cfg, err := postgresConfig(o)
	if err != nil {
		return "", "", "", err
	}
	return string(cfg.SSLMode), cfg.ApplicationName, cfg.Runtime["search_path"], nil
}

// HashPasswordCost is HashPassword with another iteration count, so tests
// need not pay the real cost for every hash.
func HashPasswordCost(password string, iterations int) (string, error) {
	return hashPassword(password, iterations)
}

// IsDuplicateError reports whether the store maps a driver's error to
// ErrDuplicate.
func IsDuplicateError(err error) bool { return errors.Is(fail("test", err), ErrDuplicate) }

// LockKey is the PostgreSQL advisory lock key of lk, so that a test can
// find its holder in pg_locks without touching anyone else's locks.
func LockKey(lk *Lock) int64 { return lk.key }

// SetMigrateLimit makes Open migrate no further than version n. It
// returns a function restoring the default (the latest version).
func SetMigrateLimit(n int) (restore func()) {
	old := migrateLimit
	migrateLimit = n
	return func() { migrateLimit = old }
}

// SetArchiveChunk sets how many raw bytes of archive rows one statement
// writes at commit (later.go) until the test ends.
func SetArchiveChunk(t interface{ Cleanup(func()) }, n int) {
	old := archiveChunk
	archiveChunk = n
	t.Cleanup(func() { archiveChunk = old })
}
