package store_test

import (
	"errors"
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
			for _, fts := range []string{"issues_fts", "messages_fts"} {
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
			for _, fts := range []string{"issues_fts", "messages_fts"} {
				if err := store.ExecRaw(ctx, s, `INSERT INTO `+fts+` (`+fts+`) VALUES ('integrity-check')`); err != nil {
					t.Errorf("%s integrity-check: %v", fts, err)
				}
			}
		}
	})
}
