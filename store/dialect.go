package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is the SQL flavour of the open database. Per-dialect SQL lives in
// the migration files and in the few methods below; everything else is
// shared.
type dialect int

const (
	sqliteDialect dialect = iota + 1
	postgresDialect
)

func (d dialect) String() string {
	switch d {
	case sqliteDialect:
		return DriverSQLite
	case postgresDialect:
		return DriverPostgres
	}
	return "unknown"
}

// sqliteBusyTimeout is how long a SQLite connection waits for the write lock
// before giving up with SQLITE_BUSY. It is below DefaultQueryTimeout so the
// clearer busy error wins.
const sqliteBusyTimeout = 10 * time.Second

// openSQLite opens the pool for a database file. Every connection gets WAL
// (readers do not block the writer), foreign keys, a busy timeout, the
// requested synchronous level, and BEGIN IMMEDIATE for transactions.
func openSQLite(o Options) (*sql.DB, error) {
	if o.Schema != "" {
		return nil, errors.New("the Schema option is for postgres only")
	}
	path := o.DSN
	switch {
	case path == "" || path == ":memory:" || strings.Contains(path, "mode=memory"):
		return nil, fmt.Errorf("DSN %q: an in-memory database is not supported (each pooled connection would see its own): give a file path", path)
	case strings.HasPrefix(path, "file:") || strings.ContainsRune(path, '?'):
		return nil, fmt.Errorf("DSN %q: give a plain file path; trackerd sets the connection options itself", path)
	}
	var sync string
	switch strings.ToLower(o.SQLiteSynchronous) {
	case "", "full":
		sync = "FULL"
	case "normal":
		sync = "NORMAL"
	default:
		return nil, fmt.Errorf("SQLiteSynchronous %q: want \"full\" or \"normal\"", o.SQLiteSynchronous)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create the database directory: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Set("_txlock", "immediate")
	return sql.Open("sqlite", path+"?"+q.Encode())
}

// postgresConfig turns Options into a lib/pq configuration: the DSN (URL or
// key=value, with the PG* environment beneath it), sslmode=disable unless
// something set a mode, an application name for pg_stat_activity, a connect
// timeout, and the schema as search_path.
func postgresConfig(o Options) (pq.Config, error) {
	cfg, err := pq.NewConfig(o.DSN)
	if err != nil {
		return pq.Config{}, err
	}
	if cfg.SSLMode == "" {
		cfg.SSLMode = pq.SSLModeDisable
	}
	if cfg.ApplicationName == "" {
		cfg.ApplicationName = "trackerd"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if o.Schema != "" {
		rt := make(map[string]string, len(cfg.Runtime)+1)
		for k, v := range cfg.Runtime {
			rt[k] = v
		}
		rt["search_path"] = pq.QuoteIdentifier(o.Schema)
		cfg.Runtime = rt
	}
	return cfg, nil
}

func openPostgres(o Options) (*sql.DB, error) {
	cfg, err := postgresConfig(o)
	if err != nil {
		return nil, err
	}
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(pgConnector{c}), nil
}

// isUniqueViolation reports whether err is either driver's unique (or
// primary key) constraint violation.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return pq.As(err, pqerror.UniqueViolation) != nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code):
// another connection holds a lock this one needs.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Conflict reports whether err is a conflict between concurrent
// transactions that running the whole transaction again resolves: a
// deadlock or serialization failure on PostgreSQL, or a unique violation
// (two transactions creating the same new user at once: the loser's insert
// waits for the winner's commit and then fails; run again, it finds the
// row). Only a caller whose transaction is safe to repeat from the start
// may retry on it.
func Conflict(err error) bool {
	if err == nil {
		return false
	}
	return isUniqueViolation(err) ||
		pq.As(err, pqerror.TRDeadlockDetected) != nil ||
		pq.As(err, pqerror.TRSerializationFailure) != nil
}

// ftsIssues returns a query (SQLite) of the ids of the issues holding word
// (see forWords) as a whole word in the title or in the content of any of
// their messages (migration 0010), in order, once per title or message
// that holds it. FTS5 indexes every message whole.
func ftsIssues(a *args, word string) string {
	return `SELECT rowid >> 32 AS issue_id FROM search_fts WHERE search_fts MATCH ` + a.add(ftsString(word))
}

// pgIssues returns a query (PostgreSQL) of the ids of the issues holding
// every one of words, each in the title or in any message (migrations 0010
// and 0012): one tsquery, whose lists GIN intersects. PostgreSQL indexes
// the first 100,000 characters of a message: a tsvector holds at most 1 MB
// of lexemes, and a failed index update would refuse the mail.
func pgIssues(a *args, words []string) string {
	return `SELECT issue_id FROM issue_words WHERE words @@ ` + pgQuery(a, words)
}

// pgQuery returns the tsquery argument for words (from searchWords): a
// NULL, which matches nothing, when a word is too long to have been
// indexed.
func pgQuery(a *args, words []string) string {
	tq, ok := tsquery(words)
	if !ok {
		return `NULL::tsquery`
	}
	return a.add(tq) + `::tsquery`
}

// ftsString is word as an FTS5 string: the word, never query syntax.
func ftsString(word string) string { return `"` + word + `"` }

// matchWords returns a condition, on the issues table aliased i, that
// holds when every one of words occurs in the issue.
func (d dialect) matchWords(a *args, words []string) string {
	if d == postgresDialect {
		return `i.id IN (` + pgIssues(a, words) + `)`
	}
	conds := make([]string, len(words))
	for k, w := range words {
		conds[k] = `i.id IN (` + ftsIssues(a, w) + `)`
	}
	return strings.Join(conds, ` AND `)
}

// titleOrder is the ORDER BY expression for titles: case-folded, then by
// code point on both databases (PostgreSQL would otherwise use the
// database's locale).
func (d dialect) titleOrder() string {
	if d == postgresDialect {
		return `lower(i.title) COLLATE "C"`
	}
	return `lower(i.title)`
}

// skipLocked is what ClaimOutbox's row selection ends with: PostgreSQL
// locks the rows it picks and skips rows another claimer holds; SQLite has
// one writer at a time, so the single UPDATE statement is already exclusive.
func (d dialect) skipLocked() string {
	if d == postgresDialect {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}
