package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrLocked: the named lock is held by another process (or by another
// Locker of this one).
var ErrLocked = errors.New("locked by another process")

// lockCheckInterval is how often a PostgreSQL Locker checks that its
// connection, and with it its locks, is still alive.
const lockCheckInterval = 5 * time.Second

// Locker hands out named, exclusive, process-wide locks over the store:
// the one-poller-per-mailbox lock of DESIGN §2. A lock is held until
// Unlock, or until the process dies: no lease to renew, nothing to clean
// up after a kill -9.
//
// On PostgreSQL a lock is a session-level advisory lock
// (pg_try_advisory_lock) keyed by a 64-bit hash of the schema and the
// name, held on one dedicated connection that the Locker takes from the
// pool while it holds any lock (one connection for all of them, however
// many mailboxes). If that connection breaks, the server has released
// the locks: the Locker notices within lockCheckInterval and closes every
// Lost channel, and the connection is thrown away, never returned to the
// pool with locks on it.
//
// On SQLite a lock is flock(2) on a file beside the database
// (DB-lock-HASH). SQLite runs on one machine, where every process using
// the database file sees the same flock, and the kernel releases it when
// the holder dies. (It is not reliable on network file systems, where
// SQLite's own locking is not either.)
//
// A Locker is safe for concurrent use. Locks are exclusive between
// Lockers too, so two Lockers in one process behave like two processes.
type Locker struct {
	st *Store

	mu   sync.Mutex
	held map[string]*Lock // by name
	// PostgreSQL: the dedicated connection while any lock is held, the
	// schema the keys are scoped to, and the health check's stop.
	conn   *sql.Conn
	schema string
	stop   chan struct{}
	// SQLite: the database file, for the lock files beside it.
	dbPath string
}

// Lock is one held lock.
type Lock struct {
	l    *Locker
	name string
	key  int64    // PostgreSQL advisory key
	file *os.File // SQLite lock file
	lost chan struct{}
	once sync.Once
}

// NewLocker returns a Locker over s. Close it to release every lock.
func (s *Store) NewLocker() *Locker {
	return &Locker{st: s, held: map[string]*Lock{}}
}

// TryLock takes the lock named name without waiting. It returns
// ErrLocked (wrapped) when another process or Locker holds it, and other
// errors when the store cannot be asked.
func (l *Locker) TryLock(ctx context.Context, name string) (*Lock, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[name]; ok {
		// PostgreSQL session locks nest and flock converts in place: a
		// second holder in this Locker must be refused here.
		return nil, fmt.Errorf("store: lock %s: %w", name, ErrLocked)
	}
	lk := &Lock{l: l, name: name, lost: make(chan struct{})}
	var err error
	if l.st.d == postgresDialect {
		err = l.lockPostgres(ctx, lk)
	} else {
		err = l.lockFile(ctx, lk)
	}
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", name, err)
	}
	l.held[name] = lk
	return lk, nil
}

func (l *Locker) lockPostgres(ctx context.Context, lk *Lock) error {
	if l.conn == nil {
		conn, err := l.st.db.Conn(ctx)
		if err != nil {
			return err
		}
		var schema string
		if err := conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			discard(conn)
			return err
		}
		l.conn, l.schema, l.stop = conn, schema, make(chan struct{})
		go l.watch(conn, l.stop)
	}
	h := sha256.Sum256([]byte("trackerd lock\x00" + l.schema + "\x00" + lk.name))
	lk.key = int64(binary.BigEndian.Uint64(h[:8]))
	var ok bool
	qctx, cancel := context.WithTimeout(ctx, l.st.timeout)
	defer cancel()
	if err := l.conn.QueryRowContext(qctx, `SELECT pg_try_advisory_lock($1)`, lk.key).Scan(&ok); err != nil {
		l.dropConnLocked()
		return err
	}
	if !ok {
		l.releaseConnIfIdleLocked()
		return ErrLocked
	}
	return nil
}

// watch checks the dedicated connection until stop is closed; when the
// connection fails, every lock on it is lost.
func (l *Locker) watch(conn *sql.Conn, stop chan struct{}) {
	t := time.NewTicker(lockCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.st.timeout)
		var one int
		err := conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
		cancel()
		if err == nil {
			continue
		}
		l.mu.Lock()
		if l.conn == conn {
			l.dropConnLocked()
		}
		l.mu.Unlock()
		return
	}
}

// dropConnLocked throws the dedicated connection away (the server ends
// its session and releases its locks) and marks every PostgreSQL lock
// lost.
func (l *Locker) dropConnLocked() {
	if l.conn == nil {
		return
	}
	close(l.stop)
	discard(l.conn)
	l.conn, l.stop = nil, nil
	for name, lk := range l.held {
		if lk.file == nil {
			lk.markLost()
			delete(l.held, name)
		}
	}
}

// releaseConnIfIdleLocked ends the dedicated connection when no lock
// needs it.
func (l *Locker) releaseConnIfIdleLocked() {
	for _, lk := range l.held {
		if lk.file == nil {
			return
		}
	}
	l.dropConnLocked()
}

// discard closes conn so that database/sql destroys it instead of
// returning it to the pool: a session that may hold advisory locks must
// not be handed to anyone else.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

func (l *Locker) lockFile(ctx context.Context, lk *Lock) error {
	if l.dbPath == "" {
		var seq int
		var name, file string
		if err := l.st.get(ctx, `PRAGMA database_list`, nil, &seq, &name, &file); err != nil {
			return fmt.Errorf("find the database file: %w", err)
		}
		if file == "" {
			return errors.New("the database has no file to lock beside")
		}
		l.dbPath = file
	}
	h := sha256.Sum256([]byte(lk.name))
	path := filepath.Join(filepath.Dir(l.dbPath), filepath.Base(l.dbPath)+"-lock-"+hex.EncodeToString(h[:8]))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// The file is never removed: a process that opened it before the
	// removal would lock an inode nobody else can see.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return ErrLocked
		}
		return fmt.Errorf("flock %s: %w", path, err)
	}
	lk.file = f
	return nil
}

// Close releases every lock of the Locker.
func (l *Locker) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, lk := range l.held {
		if lk.file != nil {
			lk.file.Close()
		}
		lk.markLost()
		delete(l.held, name)
	}
	l.dropConnLocked()
	return nil
}

// Name is the lock's name.
func (lk *Lock) Name() string { return lk.name }

// Lost is closed when the lock is no longer held: after Unlock, or when
// its PostgreSQL connection broke (then another process may take it).
// Whoever holds a lock should watch it and stop the work it guards.
func (lk *Lock) Lost() <-chan struct{} { return lk.lost }

func (lk *Lock) markLost() { lk.once.Do(func() { close(lk.lost) }) }

// Unlock releases the lock. Unlocking a lock that was lost is a no-op.
func (lk *Lock) Unlock(ctx context.Context) error {
	l := lk.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[lk.name] != lk {
		return nil // lost, or already unlocked
	}
	delete(l.held, lk.name)
	defer lk.markLost()
	if lk.file != nil {
		return lk.file.Close()
	}
	qctx, cancel := context.WithTimeout(ctx, l.st.timeout)
	defer cancel()
	if _, err := l.conn.ExecContext(qctx, `SELECT pg_advisory_unlock($1)`, lk.key); err != nil {
		// The session may still hold the lock: end it.
		l.dropConnLocked()
		return fmt.Errorf("store: unlock %s: %w", lk.name, err)
	}
	l.releaseConnIfIdleLocked()
	return nil
}
