// Package storetest opens fresh stores for tests: a temporary SQLite file,
// and a fresh schema in the PostgreSQL server that TRACKERD_TEST_POSTGRES
// names (scripts/with-postgres.sh starts one and sets it). Without that
// variable PostgreSQL tests skip, except in CI (CI=true), where they fail.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/lib/pq" // the "postgres" driver, for dropping test schemas

	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/store"
)

// Drivers are the store drivers every conformance test runs on.
var Drivers = []string{store.DriverSQLite, store.DriverPostgres}

// PostgresDSN returns the test server's DSN, or skips (fails in CI).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("TRACKERD_TEST_POSTGRES")
	if dsn == "" {
		testenv.Unavailable(t, "TRACKERD_TEST_POSTGRES is not set (scripts/with-postgres.sh sets it)")
	}
	return dsn
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// schema returns a new schema name for t and drops the schema when t
// ends (after the stores t opened are closed: cleanups run last first).
func schema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	base := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	name := "t_" + strings.Trim(base, "_") + "_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer db.Close()
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS "` + name + `" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// Options returns Options for a fresh, empty database of driver.
func Options(t testing.TB, driver string) store.Options {
	t.Helper()
	switch driver {
	case store.DriverSQLite:
		return store.Options{Driver: driver, DSN: filepath.Join(t.TempDir(), "data", "trackerd.db")}
	case store.DriverPostgres:
		dsn := PostgresDSN(t)
		return store.Options{Driver: driver, DSN: dsn, Schema: schema(t, dsn)}
	}
	t.Fatalf("unknown driver %q", driver)
	return store.Options{}
}

// Open opens o and closes it when t ends.
func Open(t testing.TB, o store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open(%s): %v", o.Driver, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// ForEachDriver runs f as a subtest per driver, with Options for a fresh
// database.
func ForEachDriver(t *testing.T, f func(t *testing.T, o store.Options)) {
	t.Helper()
	for _, d := range Drivers {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			f(t, Options(t, d))
		})
	}
}

// ForEach runs f as a subtest per driver, on a fresh store.
func ForEach(t *testing.T, f func(t *testing.T, s *store.Store)) {
	t.Helper()
	ForEachDriver(t, func(t *testing.T, o store.Options) {
		f(t, Open(t, o))
	})
}
