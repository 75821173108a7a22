package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestMigrationFiles: each dialect's files are numbered 1..N without gaps,
// and both dialects have the same N.
func TestMigrationFiles(t *testing.T) {
	t.Parallel()
	latest := store.LatestSchemaVersion()
	if latest < 1 {
		t.Fatalf("LatestSchemaVersion() = %d", latest)
	}
	for _, d := range storetest.Drivers {
		vs, names, err := store.MigrationVersions(d)
		if err != nil {
			t.Fatalf("%s migrations: %v", d, err)
		}
		if len(vs) != latest {
			t.Errorf("%s has %d migrations, sqlite %d: every schema change needs a file for each dialect", d, len(vs), latest)
		}
		for i, v := range vs {
			if v != i+1 {
				t.Errorf("%s migration %d is %s (version %d), want version %d", d, i, names[i], v, i+1)
			}
			if want := fmt.Sprintf("%s/%04d_", d, v); !strings.HasPrefix(names[i], want) {
				t.Errorf("migration file %s does not start with %s", names[i], want)
			}
		}
	}
}

// rawDB opens the test database without the store, to look at it or
// damage it.
func rawDB(t *testing.T, o store.Options) *sql.DB {
	t.Helper()
	dsn := o.DSN
	if o.Driver == store.DriverPostgres {
		dsn += " search_path=" + o.Schema
	}
	db, err := sql.Open(o.Driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrate(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		ctx := t.Context()
		latest := store.LatestSchemaVersion()

		// A fresh database gets the latest schema.
		s, err := store.Open(ctx, o)
		if err != nil {
			t.Fatalf("Open(fresh): %v", err)
		}
		if s.SchemaVersion() != latest {
			t.Errorf("fresh database at version %d, want %d", s.SchemaVersion(), latest)
		}
		u := mustUser(t, s, "keep@example.org")
		s.Close()

		// Reopening is a no-op that keeps the data.
		s, err = store.Open(ctx, o)
		if err != nil {
			t.Fatalf("Open(again): %v", err)
		}
		if s.SchemaVersion() != latest {
			t.Errorf("reopened database at version %d, want %d", s.SchemaVersion(), latest)
		}
		if got, err := s.UserByID(ctx, u.ID); err != nil || got.Address != "keep@example.org" {
			t.Errorf("after reopen: UserByID = %+v, %v", got, err)
		}
		if vs, err := store.QueryStrings(ctx, s, `SELECT version FROM schema_version`); err != nil || len(vs) != 1 || vs[0] != fmt.Sprint(latest) {
			t.Errorf("schema_version rows = %v, %v; want exactly [%d]", vs, err, latest)
		}
		// A newer trackerd migrated it.
		if err := store.ExecRaw(ctx, s, `UPDATE schema_version SET version = 999`); err != nil {
			t.Fatal(err)
		}
		s.Close()

		_, err = store.Open(ctx, o)
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("Open(newer schema) = %v, want ErrSchemaTooNew", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "999") || !strings.Contains(msg, fmt.Sprint(latest)) {
			t.Errorf("ErrSchemaTooNew message %q does not name both versions (999 and %d)", msg, latest)
		}
		// … and left it alone.
		var v int
		if err := rawDB(t, o).QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != 999 {
			t.Errorf("after the refused Open: version %d, %v; want 999 untouched", v, err)
		}
	})
}

// TestMigrateConcurrently: several processes starting at once on a fresh
// database all succeed, and the schema is created once.
func TestMigrateConcurrently(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				s, err := store.Open(ctx, o)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
		s := storetest.Open(t, o)
		if vs, err := store.QueryStrings(ctx, s, `SELECT version FROM schema_version`); err != nil || len(vs) != 1 {
			t.Errorf("schema_version rows = %v, %v; want one", vs, err)
		}
	})
}
