package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// migrationFiles holds the schema, one directory per dialect, one file per
// version: migrations/DIALECT/NNNN_name.sql, numbered from 0001 without
// gaps. A released file is never edited; a change is a new file, in both
// directories.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one schema version's SQL.
type migration struct {
	version int
	name    string // file name, for errors
	sql     string
}

// migrations returns the dialect's migrations in order, checking that they
// are numbered 1, 2, 3, … without gaps or duplicates.
func migrations(d dialect) ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") || len(num) != 4 {
			return nil, fmt.Errorf("migration %s/%s: want NNNN_name.sql", dir, name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s/%s: %w", dir, name, err)
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: d.String() + "/" + name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d (versions must start at 1 and have no gaps)", m.name, i+1)
		}
	}
	return ms, nil
}

// migrationSteps is the work of a migration that SQL cannot do, run in
// its transaction after its file, by the file's name.
var migrationSteps = map[string]func(context.Context, *sql.Tx) error{
	"postgres/0012_words_in_go.sql": reindexAll, // words.go: the words rule is Go's
}

// migrationLockClass is the first key of the PostgreSQL advisory lock that
// serializes migrations ("trkd"); the second is a hash of the schema, so
// tests migrating their own schemas do not wait for each other.
const migrationLockClass = 0x74726b64

// migrate brings the database to the latest version in one transaction and
// returns that version. Several processes may start at once: on PostgreSQL
// the first takes an advisory lock and the others wait for it, then find
// nothing to do; on SQLite BEGIN IMMEDIATE does the same. If the database
// is newer than this binary, nothing is changed and the error wraps
// ErrSchemaTooNew. A failed migration is rolled back whole.
//
// migrateLimit, when above 0, stops migrations at that version (tests of
// a migration over an older schema's data).
var migrateLimit int

// Migration statements run without the per-query timeout: a migration of a
// large database may take a while, and ctx still bounds it.
func migrate(ctx context.Context, db *sql.DB, d dialect, schema string) (int, error) {
	ms, err := migrations(d)
	if err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	latest := len(ms)
	if migrateLimit > 0 {
		latest = min(latest, migrateLimit)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit

	if d == postgresDialect {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrationLockClass, schema); err != nil {
			return 0, fmt.Errorf("store: migrate: lock: %w", err)
		}
		if schema != "" {
			if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pq.QuoteIdentifier(schema)); err != nil {
				return 0, fmt.Errorf("store: migrate: create schema %s: %w", schema, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return 0, fmt.Errorf("store: migrate: create schema_version: %w", err)
	}
	var (
		current int
		rows    int
	)
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0), COUNT(*) FROM schema_version`).Scan(&current, &rows); err != nil {
		return 0, fmt.Errorf("store: migrate: read schema_version: %w", err)
	}
	if current > latest {
		return 0, fmt.Errorf("store: %w: the database is at schema version %d, this trackerd knows versions up to %d: run a newer trackerd",
			ErrSchemaTooNew, current, latest)
	}
	if current == latest {
		return current, nil // nothing to do; the deferred rollback ends the transaction
	}
	for _, m := range ms[current:latest] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return 0, fmt.Errorf("store: migrate: apply %s: %w", m.name, err)
		}
		if step := migrationSteps[m.name]; step != nil {
			if err := step(ctx, tx); err != nil {
				return 0, fmt.Errorf("store: migrate: apply %s (its step in Go): %w", m.name, err)
			}
		}
	}
	if rows == 0 {
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, latest)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE schema_version SET version = $1`, latest)
	}
	if err != nil {
		return 0, fmt.Errorf("store: migrate: set schema_version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: migrate: commit: %w", err)
	}
	return latest, nil
}

// LatestSchemaVersion is the schema version this trackerd migrates to.
func LatestSchemaVersion() int {
	ms, err := migrations(sqliteDialect)
	if err != nil {
		return 0
	}
	return len(ms)
}
