// Package store is trackerd's persistence. It owns every SQL string and
// every database driver: callers see plain Go values and three sentinel
// errors, never a driver type.
//
// Two backends sit behind one API: SQLite (modernc.org/sqlite, pure Go, the
// embedded default) and PostgreSQL (github.com/lib/pq) for several trackerd
// processes sharing one database. Queries are written once with $N
// placeholders, which both drivers bind by number; SQL differs per dialect
// only where the databases do (DDL, full-text search, SKIP LOCKED).
//
// # Store and Tx
//
// Every data method exists on *Store, where it runs on its own (auto-commit,
// and atomic even when it takes several statements), and on *Tx, where it is
// part of the caller's transaction. They are written once, on an embedded
// type, so the two method sets cannot drift apart.
//
// A method that fails with [ErrNotFound] or [ErrDuplicate] wrote nothing and
// leaves a *Tx usable on both drivers: the store checks or uses
// INSERT … ON CONFLICT DO NOTHING instead of letting a statement fail. Any
// other error means the Tx must be abandoned (return the error from the Tx
// or Savepoint function): on PostgreSQL a failed statement aborts the whole
// transaction, and on SQLite a method that failed half-way may have written
// part of its rows.
//
// # Time
//
// Times are stored in UTC with microsecond precision: TIMESTAMPTZ on
// PostgreSQL, INTEGER Unix microseconds on SQLite (sortable, comparable, no
// text parsing, no time-zone ambiguity). Every time the store returns is in
// UTC; every time it is given is truncated to the microsecond and written
// back into the caller's value, so what a caller holds after a create equals
// what a later read returns.
//
// # Durability
//
// A commit that returned nil is on disk: SQLite runs in WAL mode with
// synchronous=FULL by default, PostgreSQL with its own settings. A commit
// that returned an error did not happen, except when the connection was lost
// during COMMIT, when the outcome is unknown; callers treat both as a
// temporary failure and rely on idempotent ingest (FiledMessage) when the
// mail comes again.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Sentinel errors. Errors returned by the store wrap them with context;
// test with errors.Is.
var (
	// ErrNotFound: the row asked for does not exist (or a delete or update
	// matched nothing).
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: a unique value (address, username, Message-ID from the
	// same author, token) is already taken.
	ErrDuplicate = errors.New("already exists")
	// ErrSchemaTooNew: the database was migrated by a newer trackerd than
	// this one; running would risk damaging it.
	ErrSchemaTooNew = errors.New("database schema is newer than this trackerd")
)

// Driver names for Options.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DefaultQueryTimeout bounds each statement when Options.QueryTimeout is 0.
const DefaultQueryTimeout = 30 * time.Second

// Options says which database to open and how.
type Options struct {
	// Driver is "sqlite" or "postgres".
	Driver string
	// DSN is, for sqlite, a file path (its parent directory is created with
	// mode 0750; in-memory databases are refused because each pooled
	// connection would see its own). For postgres it is a URL or a
	// key=value string; when it names no sslmode (and PGSSLMODE is unset),
	// sslmode=disable is used rather than lib/pq's surprising "require".
	DSN string
	// MaxOpenConns caps the connection pool; 0 picks a default per driver
	// (see defaultMaxOpenConns).
	MaxOpenConns int
	// QueryTimeout bounds each statement (not a whole Tx); 0 means
	// DefaultQueryTimeout.
	QueryTimeout time.Duration
	// SQLiteSynchronous is SQLite's PRAGMA synchronous: "full" (the default,
	// "" means full) or "normal". trackerd acknowledges mail after the
	// commit, so a commit must survive power loss: NORMAL in WAL mode may
	// lose the last commits. Ignored for postgres.
	SQLiteSynchronous string
	// Schema, postgres only, is a schema to create if missing and to use
	// for every connection (search_path). Tests give each test its own.
	// "" uses the DSN's search_path (normally public).
	Schema string
}

// defaultMaxOpenConns is the pool size when Options.MaxOpenConns is 0.
//
// SQLite in WAL mode has one writer at a time and any number of readers;
// writers queue on the database lock (BEGIN IMMEDIATE plus busy_timeout), so
// more connections add no write throughput. Four lets the web view and the
// notifier read while the listener holds the write lock.
//
// PostgreSQL: ten covers one process's listener (group commit), pollers,
// notifier and web requests, and leaves room in the server's default
// max_connections (100) for several trackerd instances, psql and backups.
func defaultMaxOpenConns(driver string) int {
	if driver == DriverSQLite {
		return 4
	}
	return 10
}

// Store is an open database. It is safe for concurrent use. Its data
// methods (CreateUser, Issue, Enqueue, …) are shared with Tx; on a Store
// each runs on its own, atomically.
type Store struct {
	conn
	db        *sql.DB
	version   int
	stmts     *stmtCache
	missed    atomic.Int64 // statements transactions prepared for themselves, for tests
	ids       idPool       // archive ids for PostgreSQL transactions (later.go)
	pipeStats pipeStats    // for tests (pipeline.go)
}

// Open opens the database, checks it answers, and applies every pending
// migration in one transaction. A database migrated by a newer trackerd
// gives ErrSchemaTooNew and is left untouched. Any other error is worth
// retrying later (the database may be starting, or the disk full).
func Open(ctx context.Context, o Options) (*Store, error) {
	timeout := o.QueryTimeout
	if timeout == 0 {
		timeout = DefaultQueryTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("store: open: negative query timeout %v", o.QueryTimeout)
	}
	if o.MaxOpenConns < 0 {
		return nil, fmt.Errorf("store: open: negative MaxOpenConns %d", o.MaxOpenConns)
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch o.Driver {
	case DriverSQLite:
		d = sqliteDialect
		db, err = openSQLite(o)
	case DriverPostgres:
		d = postgresDialect
		db, err = openPostgres(o)
	default:
		return nil, fmt.Errorf("store: open: unknown driver %q (want %q or %q)", o.Driver, DriverSQLite, DriverPostgres)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", o.Driver, err)
	}
	n := o.MaxOpenConns
	if n == 0 {
		n = defaultMaxOpenConns(o.Driver)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if d == postgresDialect {
		// Give idle server processes back; an idle SQLite connection
		// costs only its page cache, and keeping it keeps the cache warm.
		db.SetConnMaxIdleTime(5 * time.Minute)
	}

	// A SQLite connection sets its pragmas as it opens, and switching a
	// database that another process is creating or recovering (after a
	// kill) to WAL can answer SQLITE_BUSY at once, without the busy
	// handler: try again for as long as the busy timeout would wait.
	for start := time.Now(); ; {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err = db.PingContext(pctx)
		cancel()
		if err == nil || d != sqliteDialect || !isBusy(err) || time.Since(start) > sqliteBusyTimeout {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: ping: %w", o.Driver, err)
	}
	version, err := migrate(ctx, db, d, o.Schema)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{
		conn:    conn{q: db, db: db, d: d, timeout: timeout},
		db:      db,
		version: version,
		stmts:   &stmtCache{m: map[string]*sql.Stmt{}},
	}, nil
}

// Close closes the pool. Transactions still running fail.
func (s *Store) Close() error {
	s.stmts.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Driver returns "sqlite" or "postgres".
func (s *Store) Driver() string { return s.d.String() }

// Ping checks that the database answers a query within the query timeout,
// for /healthz.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.get(ctx, `SELECT 1`, nil, &one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Stats is a snapshot for /healthz and /metrics.
type Stats struct {
	Driver        string
	SchemaVersion int
	Users         int
	Issues        int
	Messages      int
	// Outbox and Inbound count rows by status; a status with no rows is
	// absent.
	Outbox  map[string]int
	Inbound map[string]int
	// Pool state, from database/sql.
	OpenConnections int
	InUse           int
	Idle            int
	WaitCount       int64
	WaitDuration    time.Duration
}

// Stats counts rows and reports the connection pool.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Driver: s.Driver(), SchemaVersion: s.version, Outbox: map[string]int{}, Inbound: map[string]int{}}
	err := s.get(ctx, `SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM issues), (SELECT COUNT(*) FROM messages)`,
		nil, &st.Users, &st.Issues, &st.Messages)
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	for table, m := range map[string]map[string]int{"outbox": st.Outbox, "inbound": st.Inbound} {
		err := s.each(ctx, `SELECT status, COUNT(*) FROM `+table+` GROUP BY status`, nil, func(rows *sql.Rows) error {
			var status string
			var n int
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			m[status] = n
			return nil
		})
		if err != nil {
			return Stats{}, fmt.Errorf("store: stats: %s: %w", table, err)
		}
	}
	ps := s.db.Stats()
	st.OpenConnections, st.InUse, st.Idle = ps.OpenConnections, ps.InUse, ps.Idle
	st.WaitCount, st.WaitDuration = ps.WaitCount, ps.WaitDuration
	return st, nil
}

// Tx is a database transaction, handed to the function given to Store.Tx.
// It carries the same data methods as Store. It must be used by one
// goroutine at a time and not after that function returns; inside it, use
// the Tx and not the Store (on SQLite a write through the Store would wait
// for the Tx's own lock until busy_timeout).
type Tx struct {
	conn
	tx    *sql.Tx
	depth int // nesting of Savepoint calls, for savepoint names
	// unreleased is the PostgreSQL savepoint that succeeded last and is
	// not released yet (see begin).
	unreleased string
}

// Tx runs fn in a transaction: it commits if fn returns nil and rolls back
// otherwise (or if fn panics; the panic goes on). fn's error is returned as
// it is, so errors.Is works on it. On SQLite the transaction starts with
// BEGIN IMMEDIATE: it takes the write lock up front (waiting up to
// busy_timeout for it), so two writers never deadlock upgrading a read lock.
// ctx bounds the whole transaction; QueryTimeout bounds each statement.
func (s *Store) Tx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	var (
		sqlTx *sql.Tx
		sc    *sql.Conn
		pc    *pgConn
	)
	if s.d == postgresDialect {
		sqlTx, sc, pc, err = s.beginConn(ctx)
	} else {
		sqlTx, err = s.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{conn: conn{q: sqlTx, d: s.d, timeout: s.timeout}, tx: sqlTx}
	// Statements are prepared once per transaction at most: a group
	// commit runs the same twenty-odd statements for every mail of its
	// batch, and PostgreSQL then parses and plans each once, not once per
	// mail; those seen before come prepared from the store's cache.
	ptx := &preparedTx{tx: sqlTx, cache: s.stmts, stmts: map[string]*sql.Stmt{}}
	tx.q = ptx
	defer func() {
		if sc != nil {
			sc.Close() // back to the pool, before add takes one
		}
		s.missed.Add(int64(len(ptx.missed)))
		// Only after a commit: after a failure the database may be down,
		// and the caller must hear of it now.
		if len(ptx.missed) > 0 && err == nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
			s.stmts.add(actx, s.db, ptx.missed)
			cancel()
		}
	}()
	if s.d == sqliteDialect {
		tx.fts = &ftsPending{}
	} else {
		tx.later = &later{pool: &s.ids}
		tx.pipe = &pipeline{tx: sqlTx, pc: pc, stats: &s.pipeStats}
	}
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("store: rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.send(ctx, true); err != nil {
		_ = sqlTx.Rollback()
		return fmt.Errorf("store: commit: %w", err)
	}
	if err := tx.flush(ctx); err != nil { // what the last writes did not take
		_ = sqlTx.Rollback()
		return fmt.Errorf("store: commit: %w", err)
	}
	if tx.fts != nil {
		if err := tx.fts.flush(ctx, &tx.conn); err != nil {
			_ = sqlTx.Rollback()
			return fmt.Errorf("store: commit: %w", err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// beginConn begins a PostgreSQL transaction on a connection it holds
// itself, to know what that session has prepared (pipeline.go); the
// caller closes sc when the transaction has ended. When the connection
// the pool gave turns out dead (the server restarted, or ended that
// session), database/sql drops it and beginConn tries the next, up to
// one more than the pool holds: a BEGIN on a dead connection started
// nothing. (DB.BeginTx retries only on driver.ErrBadConn, and lib/pq
// reports a reset connection otherwise, so before this the first
// transaction after a restart failed.)
func (s *Store) beginConn(ctx context.Context) (tx *sql.Tx, sc *sql.Conn, pc *pgConn, err error) {
	for range s.db.Stats().MaxOpenConnections + 1 {
		if sc, err = s.db.Conn(ctx); err != nil {
			return nil, nil, nil, err
		}
		_ = sc.Raw(func(dc any) error {
			pc, _ = dc.(*pgConn)
			return nil
		})
		if tx, err = sc.BeginTx(ctx, nil); err == nil {
			return tx, sc, pc, nil
		}
		dead := errors.Is(err, driver.ErrBadConn) || pc != nil && !pc.IsValid()
		sc.Close()
		if !dead || ctx.Err() != nil {
			break
		}
	}
	return nil, nil, nil, err
}

// Savepoint runs fn as a nested unit of the transaction: if fn returns an
// error (or panics), everything it did is rolled back and the rest of the
// transaction stays as it was and usable; fn's error is returned as it is.
// If fn returns nil its work stays, to commit or roll back with the
// enclosing transaction.
//
// This is how the SMTP listener commits several mails at once (group
// commit): one Tx, one Savepoint per mail, so one bad mail does not undo the
// others. Savepoints nest.
func (tx *Tx) Savepoint(ctx context.Context, fn func(tx *Tx) error) (err error) {
	tx.depth++
	name := "trackerd_sp" + strconv.Itoa(tx.depth)
	defer func() { tx.depth-- }()
	if err := tx.begin(ctx, name); err != nil {
		return fmt.Errorf("store: savepoint: %w", err)
	}
	mark := 0 // the archive rows held when fn starts (later.go)
	if tx.later != nil {
		mark = len(tx.later.archive)
	}
	// Undo with a context that survives ctx's cancellation: a cancelled
	// mail must not leave its half in the transaction.
	undo := func() error {
		uctx := context.WithoutCancel(ctx)
		if tx.later != nil {
			tx.later.drop(mark) // what fn queued: begin sent the rest
		}
		tx.unreleased = "" // rolling back to name undoes any savepoint inside it
		if tx.pipe != nil {
			if tx.pipe.unpush("SAVEPOINT " + name) {
				return nil // never sent: nothing to undo on the server
			}
			// All that waits came after the savepoint: the rollback
			// undoes it anyway.
			tx.pipe.pending = nil
		}
		if _, err := tx.exec(uctx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
			return fmt.Errorf("store: rollback to savepoint: %w", err)
		}
		if _, err := tx.exec(uctx, "RELEASE SAVEPOINT "+name); err != nil {
			return fmt.Errorf("store: release savepoint: %w", err)
		}
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			_ = undo()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if uErr := undo(); uErr != nil {
			return errors.Join(err, uErr)
		}
		return err
	}
	if tx.d == postgresDialect {
		// Released with the next SAVEPOINT, in the same round trip (see
		// begin), or by COMMIT. Releasing it also releases any savepoint
		// fn left unreleased inside it.
		tx.unreleased = name
		return nil
	}
	if _, err := tx.exec(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("store: release savepoint: %w", err)
	}
	return nil
}

// begin sets savepoint name. On PostgreSQL it waits to go with the
// transaction's next statement (pipeline.go), after the writes queued so
// far; the savepoint that last succeeded may still be unreleased
// (Savepoint leaves it for this) and is released there too. It is
// always name's previous sibling: one that succeeded inside another is
// superseded as unreleased by the outer one's success, or cleared by its
// rollback. Until it is released, what ran after it ran inside it: the
// same to COMMIT, to an error (which fails the transaction either way,
// as nobody rolls back to it) and to a rollback to an enclosing
// savepoint.
func (tx *Tx) begin(ctx context.Context, name string) error {
	if tx.pipe == nil {
		_, err := tx.exec(ctx, "SAVEPOINT "+name)
		return err
	}
	if q, a, ok := tx.later.queued().statement(); ok {
		tx.pipe.push(q, a)
		tx.later.clear()
	}
	if prev := tx.unreleased; prev != "" {
		tx.unreleased = ""
		tx.pipe.push("RELEASE SAVEPOINT "+prev, nil)
	}
	tx.pipe.push("SAVEPOINT "+name, nil)
	return nil
}
