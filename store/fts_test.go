package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestSearchAfterSavepoints: rows a transaction keeps are searchable after
// it commits; rows a savepoint rolled back are not (SQLite indexes at
// commit time, see migration 0003).
func TestSearchAfterSavepoints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		errUndo := errors.New("undo")
		var kept, undone int64
		err := s.Tx(ctx, func(tx *store.Tx) error {
			for i, word := range []string{"keptword", "undoneword", "laterword"} {
				err := tx.Savepoint(ctx, func(tx *store.Tx) error {
					is := mustIssue(t, tx, "title"+word, alice.ID)
					mustMessage(t, tx, is.ID, alice.ID, "<"+word+"@x>", "body "+word)
					if i == 1 {
						undone = is.ID
						return errUndo
					}
					if i == 0 {
						kept = is.ID
					}
					return nil
				})
				if err != nil && !errors.Is(err, errUndo) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		for q, want := range map[string]int{"keptword": 1, "titlekeptword": 1, "undoneword": 0, "titleundoneword": 0, "laterword": 1} {
			list, err := s.ListIssues(ctx, store.IssueFilter{Query: q})
			if err != nil || len(list) != want {
				t.Errorf("search %q: %d issues, %v; want %d", q, len(list), err, want)
			}
		}
		if kept == 0 || undone == 0 {
			t.Fatalf("ids: kept %d undone %d", kept, undone)
		}
		if s.Driver() == store.DriverSQLite {
			for _, fts := range []string{"search_fts"} {
				if err := store.ExecRaw(ctx, s, `INSERT INTO `+fts+` (`+fts+`) VALUES ('integrity-check')`); err != nil {
					t.Errorf("%s integrity-check: %v", fts, err)
				}
			}
		}
	})
}

// TestRetitleInSameTx: an issue created and retitled in one transaction is
// found by its new title only.
func TestRetitleInSameTx(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		err := s.Tx(ctx, func(tx *store.Tx) error {
			is := mustIssue(t, tx, "oldtitleword", alice.ID)
			mustMessage(t, tx, is.ID, alice.ID, "<r1@x>", "bodyword")
			is.Title = "newtitleword"
			if err := tx.UpdateIssue(ctx, is); err != nil {
				return err
			}
			is.Status = "chatting" // an update that keeps the title
			return tx.UpdateIssue(ctx, is)
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		for q, want := range map[string]int{"oldtitleword": 0, "newtitleword": 1, "bodyword": 1} {
			list, err := s.ListIssues(ctx, store.IssueFilter{Query: q})
			if err != nil || len(list) != want {
				t.Errorf("search %q: %d issues, %v; want %d", q, len(list), err, want)
			}
		}
		if s.Driver() == store.DriverSQLite {
			for _, fts := range []string{"search_fts"} {
				if err := store.ExecRaw(ctx, s, `INSERT INTO `+fts+` (`+fts+`) VALUES ('integrity-check')`); err != nil {
					t.Errorf("%s integrity-check: %v", fts, err)
				}
			}
		}
	})
}

// TestMigrateSearchIndex: migrations 0010 and 0012 index the titles and
// messages already in the database, on both stores.
func TestMigrateSearchIndex(t *testing.T) {
	// Not parallel: it changes a package setting.
	for _, d := range storetest.Drivers {
		t.Run(d, func(t *testing.T) { testMigrateSearchIndex(t, storetest.Options(t, d)) })
	}
}

func testMigrateSearchIndex(t *testing.T, o store.Options) {
	ctx := t.Context()
	restore := store.SetMigrateLimit(9)
	s, err := store.Open(ctx, o)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	if v := s.SchemaVersion(); v != 9 {
		t.Fatalf("schema version %d, want 9", v)
	}
	// Rows as version 9 held them, written without the store's code.
	for _, q := range []string{
		`INSERT INTO users (id, username, username_lower, created) VALUES (1, 'a', 'a', ` + storeNow(o) + `)`,
		`INSERT INTO issues (id, title, status, priority, created, activity) VALUES (1, 'oldtitleword one', 'unread', 'bug', ` + storeNow(o) + `, ` + storeNow(o) + `)`,
		`INSERT INTO issues (id, title, status, priority, created, activity) VALUES (2, 'second', 'unread', 'bug', ` + storeNow(o) + `, ` + storeNow(o) + `)`,
		`INSERT INTO messages (id, issue_id, author_id, date, message_id, content, full_text) VALUES (1, 2, 1, ` + storeNow(o) + `, '<1@x>', 'oldbodyword here', '')`,
		`INSERT INTO messages (id, issue_id, author_id, date, message_id, content, full_text) VALUES (2, 2, 1, ` + storeNow(o) + `, '<2@x>', 'another oldword, ask bob@example.com', '')`,
	} {
		if err := store.ExecRaw(ctx, s, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = storetest.Open(t, o)
	if v := s.SchemaVersion(); v != store.LatestSchemaVersion() {
		t.Fatalf("schema version %d after reopening, want %d", v, store.LatestSchemaVersion())
	}
	for q, want := range map[string][]int64{"oldtitleword": {1}, "oldbodyword": {2}, "oldword second": {2}, "one oldword": {},
		// Words inside an address: PostgreSQL's parser kept it whole,
		// migration 0012 reindexes by the words rule.
		"example bob": {2}, "example.com": {2}, "one": {1}} {
		list, err := s.ListIssues(ctx, store.IssueFilter{Query: q, Sort: "id"})
		if err != nil {
			t.Fatal(err)
		}
		got := []int64{}
		for _, is := range list {
			got = append(got, is.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %q after migrating: %v, want %v", q, got, want)
		}
	}
}

// storeNow is the current time as a literal of o's timestamp columns.
func storeNow(o store.Options) string {
	if o.Driver == store.DriverPostgres {
		return "now()"
	}
	return "0"
}

// TestMergeSearch: merging SQLite's index in steps leaves one segment and
// the same search results; on PostgreSQL it does nothing.
func TestMergeSearch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		for i := range 30 { // a segment per commit
			err := s.Tx(ctx, func(tx *store.Tx) error {
				is := mustIssue(t, tx, fmt.Sprintf("merge title%d", i), alice.ID)
				mustMessage(t, tx, is.ID, alice.ID, fmt.Sprintf("<merge%d@x>", i), fmt.Sprintf("body%d common", i%3))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		search := func() map[string][]int64 {
			out := map[string][]int64{}
			for _, q := range []string{"merge", "title7", "body1", "common body2"} {
				list, err := s.ListIssues(ctx, store.IssueFilter{Query: q, Sort: "id"})
				if err != nil {
					t.Fatal(err)
				}
				for _, is := range list {
					out[q] = append(out[q], is.ID)
				}
			}
			return out
		}
		before := search()
		segments := func() string {
			n, err := store.QueryStrings(ctx, s, `SELECT count(DISTINCT segid) FROM search_fts_idx`)
			if err != nil || len(n) != 1 {
				t.Fatalf("segments: %v %v", n, err)
			}
			return n[0]
		}
		if s.Driver() == store.DriverSQLite && segments() == "1" {
			t.Fatal("one segment before merging: the test merges nothing")
		}
		steps := 0
		for first := true; ; first = false {
			worked, err := s.MergeSearch(ctx, 1, first)
			if err != nil {
				t.Fatal(err)
			}
			if !worked {
				break
			}
			if steps++; steps > 1000 {
				t.Fatal("merging never ends")
			}
		}
		if s.Driver() == store.DriverPostgres {
			if steps != 0 {
				t.Errorf("PostgreSQL: %d merge steps, want none", steps)
			}
			return
		}
		if steps == 0 {
			t.Error("no merge step found work, with several segments")
		}
		if n := segments(); n != "1" {
			t.Errorf("%s segments after merging, want 1", n)
		}
		if after := search(); !reflect.DeepEqual(after, before) {
			t.Errorf("search after merging %v, before %v", after, before)
		}
		if err := store.ExecRaw(ctx, s, `INSERT INTO search_fts (search_fts) VALUES ('integrity-check')`); err != nil {
			t.Errorf("integrity-check: %v", err)
		}
	})
}
