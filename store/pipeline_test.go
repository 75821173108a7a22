package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestPipelineValues: a statement that goes with the waiting ones (the
// savepoint just set, on PostgreSQL) reads its arguments exactly as when
// it goes alone — quotes, backslashes, non-ASCII text, times, NULL,
// arrays — and one whose arguments cannot go as text (bytes, a NUL) goes
// alone, with the same result or the same error as before.
func TestPipelineValues(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		at := time.Date(2026, 11, 21, 8, 1, 2, 345678000, time.UTC)
		cases := []struct {
			query string
			arg   any
			want  string
		}{
			{"SELECT $1 || ''", `it's a \back\slash, "quoted", E'no', ü, 日本, 😀`, `it's a \back\slash, "quoted", E'no', ü, 日本, 😀`},
			{"SELECT $1 || ''", "'; SELECT 1; --", "'; SELECT 1; --"},
			{"SELECT $1 || ''", "", ""},
			{"SELECT CAST($1 AS BIGINT) + 1", int64(-9007199254740993), "-9007199254740992"},
			{"SELECT CAST($1 AS INTEGER) * 2", 21, "42"},
			{"SELECT CASE WHEN $1 THEN 'yes' ELSE 'no' END", true, "yes"},
			{"SELECT COALESCE($1, 'null')", nil, "null"},
			{"SELECT $1 || ''", []byte("bytes, alone"), "bytes, alone"},
		}
		if s.Driver() == store.DriverPostgres {
			cases = append(cases, []struct {
				query string
				arg   any
				want  string
			}{
				{"SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')", at, "2026-11-21 08:01:02.345678"},
				{"SELECT array_to_string($1::text[], '|')", pq.StringArray{`a"b`, `c\d`, "e,f", "{g}"}, `a"b|c\d|e,f|{g}`},
				{"SELECT ($1::float8 * 2)::text", 1.25, "2.5"},
			}...)
		}
		for _, c := range cases {
			var got string
			err := s.Tx(ctx, func(tx *store.Tx) error {
				return tx.Savepoint(ctx, func(tx *store.Tx) error {
					var err error
					got, err = store.TxQuery(ctx, tx, c.query, c.arg)
					return err
				})
			})
			if err != nil || got != c.want {
				t.Errorf("%s with %#v = %q, %v; want %q", c.query, c.arg, got, err, c.want)
			}
		}
		// A NUL fails as it did (the server refuses it in text) and
		// takes only its savepoint with it.
		err := s.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				_, err := store.TxQuery(ctx, tx, "SELECT $1 || ''", "a\x00b")
				return err
			}); err == nil && s.Driver() == store.DriverPostgres {
				t.Error("a NUL in a text argument: no error")
			}
			got, err := store.TxQuery(ctx, tx, "SELECT 'after'")
			if got != "after" {
				t.Errorf("after the failed savepoint: %q, %v", got, err)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if merged, broken := store.Merged(s); s.Driver() == store.DriverPostgres && (merged < int64(len(cases)-1) || broken != 0) {
			t.Errorf("Merged = %d, %d broken; want at least %d merged (all but the bytes), none broken", merged, broken, len(cases)-1)
		}
	})
}

// TestPipelineSavepoints: a savepoint that fails before any statement
// was sent leaves what waited before it, a queued write that waits
// behind a savepoint nobody sends after is written at commit, and a
// merged statement that fails takes only its savepoint with it. One
// that cannot be prepared fails its transaction, as it did before.
func TestPipelineSavepoints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "pipe@example.org")
		is := mustIssue(t, s, "Pipeline", u.ID)
		bad := errors.New("bad")
		err := s.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				return tx.AddChangesLater(ctx, []*store.Change{{IssueID: is.ID, Property: "status", New: "kept"}})
			}); err != nil {
				return err
			}
			// Never sends a statement: nothing to roll back on the
			// server, and the write queued before it stays.
			if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				if err := tx.AddChangesLater(ctx, []*store.Change{{IssueID: is.ID, Property: "status", New: "undone"}}); err != nil {
					return err
				}
				return bad
			}); err != bad {
				t.Errorf("Savepoint = %v, want bad", err)
			}
			// The last: its queued write waits behind its savepoint,
			// and only the commit sends them.
			return tx.Savepoint(ctx, func(tx *store.Tx) error {
				return tx.AddChangesLater(ctx, []*store.Change{{IssueID: is.ID, Property: "priority", New: "last"}})
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		chs, err := s.Changes(ctx, is.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range chs {
			got = append(got, ch.Property+"="+ch.New)
		}
		if strings.Join(got, " ") != "status=kept priority=last" {
			t.Errorf("changes = %v, want status=kept priority=last", got)
		}

		// A statement that fails on its first use, behind a savepoint:
		// the savepoint takes it back, and the rest still works on every
		// connection of the pool.
		fails := "SELECT 1 / (CAST($1 AS INTEGER) - 1)" // SQLite: NULL, no error
		if s.Driver() == store.DriverSQLite {
			fails = "INSERT INTO changes (issue_id, at, property) VALUES (NULL, 0, CAST($1 AS TEXT))"
		}
		for range 3 {
			err := s.Tx(ctx, func(tx *store.Tx) error {
				if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
					return store.TxExec(ctx, tx, fails, 1)
				}); err == nil {
					t.Error("a failing statement: no error")
				}
				return tx.Savepoint(ctx, func(tx *store.Tx) error {
					return tx.AddChangesLater(ctx, []*store.Change{{IssueID: is.ID, Property: "title", New: "after"}})
				})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// echo runs a merged query in a transaction of its own.
		echo := func(v, after string) {
			t.Helper()
			err := s.Tx(ctx, func(tx *store.Tx) error {
				return tx.Savepoint(ctx, func(tx *store.Tx) error {
					got, err := store.TxQuery(ctx, tx, "SELECT CAST($1 AS TEXT)", v)
					if got != v {
						t.Errorf("after %s: %q, %v; want %q", after, got, err, v)
					}
					return err
				})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			echo("still", "a failed merged statement")
		}
		chs, err = s.Changes(ctx, is.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) != 5 {
			t.Errorf("%d changes, want 5", len(chs))
		}
		if merged, broken := store.Merged(s); s.Driver() == store.DriverPostgres && (merged < 6 || broken != 0) {
			t.Errorf("Merged = %d, %d broken; want at least 6 merged (the failing statements too), none broken", merged, broken)
		}

		// A statement that cannot be prepared fails as it did, and its
		// connection goes on without merging.
		err = s.Tx(ctx, func(tx *store.Tx) error {
			return tx.Savepoint(ctx, func(tx *store.Tx) error {
				return store.TxExec(ctx, tx, "SELECT no_such_column FROM issues WHERE id = $1", is.ID)
			})
		})
		if err == nil {
			t.Error("a statement naming a missing column: no error")
		}
		for range 3 { // on the same idle connection, most likely
			echo("again", "a failed PREPARE")
		}
		if _, broken := store.Merged(s); s.Driver() == store.DriverPostgres && broken != 1 {
			t.Errorf("%d connections stopped merging, want the one whose PREPARE failed", broken)
		}
	})
}

// TestTxAfterServerKilledConn: a PostgreSQL transaction whose pooled
// connection the server has closed meanwhile (a restart, an
// administrator's pg_terminate_backend) begins on another one, as
// database/sql's own BeginTx would, instead of failing.
func TestTxAfterServerKilledConn(t *testing.T) {
	o := storetest.Options(t, store.DriverPostgres)
	s := storetest.Open(t, o)
	ctx := t.Context()
	pid := func() string {
		t.Helper()
		var got string
		err := s.Tx(ctx, func(tx *store.Tx) error {
			var err error
			got, err = store.TxQuery(ctx, tx, "SELECT CAST(pg_backend_pid() AS TEXT)")
			return err
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		return got
	}
	first := pid()
	other, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := store.ExecRaw(ctx, other, "SELECT pg_terminate_backend(CAST($1 AS INTEGER))", first); err != nil {
		t.Fatal(err)
	}
	if second := pid(); second == first {
		t.Errorf("the transaction ran on the terminated backend %s", first)
	}
}
