package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestLocker: a lock is exclusive between Lockers (as between processes),
// and within one; Unlock and Close release it; Lost tells the holder.
func TestLocker(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		ctx := t.Context()
		// Two stores on one database: two processes' pools.
		s1, s2 := storetest.Open(t, o), storetest.Open(t, o)
		a, b := s1.NewLocker(), s2.NewLocker()
		defer a.Close()
		defer b.Close()

		la, err := a.TryLock(ctx, "imap://tracker@host:993/INBOX")
		if err != nil {
			t.Fatalf("first TryLock: %v", err)
		}
		if _, err := b.TryLock(ctx, "imap://tracker@host:993/INBOX"); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("TryLock of a held lock from another store: %v, want ErrLocked", err)
		}
		if _, err := a.TryLock(ctx, "imap://tracker@host:993/INBOX"); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("TryLock of a held lock from the same Locker: %v, want ErrLocked", err)
		}
		lb, err := b.TryLock(ctx, "pop3://tracker@host:995")
		if err != nil {
			t.Fatalf("TryLock of another name: %v", err)
		}
		select {
		case <-la.Lost():
			t.Fatal("Lost closed while the lock is held")
		default:
		}
		if err := la.Unlock(ctx); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		select {
		case <-la.Lost():
		default:
			t.Fatal("Lost not closed after Unlock")
		}
		lb2, err := b.TryLock(ctx, "imap://tracker@host:993/INBOX")
		if err != nil {
			t.Fatalf("TryLock after the holder unlocked: %v", err)
		}
		if _, err := a.TryLock(ctx, "pop3://tracker@host:995"); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("TryLock of b's second lock: %v, want ErrLocked", err)
		}
		// Close releases everything b holds.
		b.Close()
		for _, lk := range []*store.Lock{lb, lb2} {
			select {
			case <-lk.Lost():
			default:
				t.Fatalf("lock %s not lost after Close", lk.Name())
			}
		}
		for _, name := range []string{"imap://tracker@host:993/INBOX", "pop3://tracker@host:995"} {
			lk, err := a.TryLock(ctx, name)
			if err != nil {
				t.Fatalf("TryLock(%s) after the other Locker closed: %v", name, err)
			}
			lk.Unlock(ctx)
		}
	})
}

// TestLockLostWithConnection: on PostgreSQL, when the lock's connection
// dies the server releases the lock; the holder is told through Lost and
// another process can take it.
func TestLockLostWithConnection(t *testing.T) {
	o := storetest.Options(t, store.DriverPostgres)
	ctx := t.Context()
	s1, s2 := storetest.Open(t, o), storetest.Open(t, o)
	a, b := s1.NewLocker(), s2.NewLocker()
	defer a.Close()
	defer b.Close()
	lk, err := a.TryLock(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	// Kill the backend holding this advisory lock, as a network failure or
	// a DBA would. Only this key's holder: the other packages' tests share
	// the server, and their migrations and pollers hold advisory locks too.
	// (A bigint advisory key shows in pg_locks as classid = its high and
	// objid = its low 32 bits, objsubid = 1.)
	if err := store.ExecRaw(ctx, s2, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid::bigint = (($1::bigint >> 32) & 4294967295) AND objid::bigint = ($1::bigint & 4294967295)`, store.LockKey(lk)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lk.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("Lost not closed within 30s of the connection's death")
	}
	lk2, err := b.TryLock(ctx, "m")
	if err != nil {
		t.Fatalf("TryLock after the holder's connection died: %v", err)
	}
	lk2.Unlock(ctx)
	// The Locker recovers: a new lock takes a new connection.
	lk3, err := a.TryLock(ctx, "m")
	if err != nil {
		t.Fatalf("TryLock on the Locker whose connection died: %v", err)
	}
	lk3.Unlock(ctx)
}
