package store_test

import (
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestFiled(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		bob := mustUser(t, s, "bob@example.org")
		is := mustIssue(t, s, "Filed", alice.ID)
		m := mustMessage(t, s, is.ID, alice.ID, "<f1@example.org>", "text")

		_, _, err := s.Filed(ctx, "<f1@example.org>", alice.ID)
		wantErr(t, "Filed before MarkFiled", err, store.ErrNotFound)
		err = s.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.MarkFiled(ctx, "<f1@example.org>", alice.ID, 0, 0); err != nil {
				return err
			}
			// A duplicate leaves the transaction usable.
			wantErr(t, "second MarkFiled in one Tx", tx.MarkFiled(ctx, "<f1@example.org>", alice.ID, 0, 0), store.ErrDuplicate)
			return tx.UpdateFiled(ctx, "<f1@example.org>", alice.ID, is.ID, m.ID)
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		wantErr(t, "MarkFiled of a filed mail", s.MarkFiled(ctx, "<f1@example.org>", alice.ID, 0, 0), store.ErrDuplicate)
		// The same Message-ID from another author is another mail.
		if err := s.MarkFiled(ctx, "<f1@example.org>", bob.ID, is.ID, 0); err != nil {
			t.Errorf("MarkFiled(same id, other author): %v", err)
		}
		gotIssue, gotMsg, err := s.Filed(ctx, "<f1@example.org>", alice.ID)
		if err != nil || gotIssue != is.ID || gotMsg != m.ID {
			t.Errorf("Filed = %d, %d, %v; want %d, %d, nil", gotIssue, gotMsg, err, is.ID, m.ID)
		}
		gotIssue, gotMsg, err = s.Filed(ctx, "<f1@example.org>", bob.ID)
		if err != nil || gotIssue != is.ID || gotMsg != 0 {
			t.Errorf("Filed(bob) = %d, %d, %v; want %d, 0, nil", gotIssue, gotMsg, err, is.ID)
		}
		wantErr(t, "UpdateFiled of an unknown mail", s.UpdateFiled(ctx, "<nope@x>", alice.ID, 0, 0), store.ErrNotFound)
	})
}

// TestUserByAddressClaim: the author's lookup claims the mail for the
// user found, once; an unknown address claims nothing.
func TestUserByAddressClaim(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		_, err := s.UserByAddressClaim(ctx, "nobody@example.org", "<c1@x>")
		wantErr(t, "UserByAddressClaim(unknown address)", err, store.ErrNotFound)
		if n, err := store.QueryStrings(ctx, s, `SELECT COUNT(*) FROM filed`); err != nil || n[0] != "0" {
			t.Errorf("filed rows after the unknown address: %v, %v; want 0", n, err)
		}
		err = s.Tx(ctx, func(tx *store.Tx) error {
			u, err := tx.UserByAddressClaim(ctx, " Alice@Example.ORG", "<c1@x>")
			if err != nil || u.ID != alice.ID || u.Address != "alice@example.org" || u.Username != alice.Username {
				t.Errorf("UserByAddressClaim = %+v, %v; want alice", u, err)
			}
			// A duplicate leaves the transaction usable, and names the user.
			u, err = tx.UserByAddressClaim(ctx, "alice@example.org", "<c1@x>")
			wantErr(t, "second claim in one Tx", err, store.ErrDuplicate)
			if u == nil || u.ID != alice.ID {
				t.Errorf("duplicate claim: user %+v, want alice", u)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		wantErr(t, "MarkFiled after the claim", s.MarkFiled(ctx, "<c1@x>", alice.ID, 0, 0), store.ErrDuplicate)
	})
}

func TestIssueByTitle(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		old := &store.Issue{Title: "Printer on fire", Status: "unread", Priority: "bug", CreatorID: alice.ID,
			Created: time.Now().Add(-30 * 24 * time.Hour), Activity: time.Now().Add(-time.Hour)}
		if err := s.CreateIssue(ctx, old); err != nil {
			t.Fatal(err)
		}
		got, err := s.IssueByTitle(ctx, "PRINTER ON FIRE", time.Now().Add(-2*time.Hour), true)
		if err != nil || got.ID != old.ID {
			t.Errorf("IssueByTitle(by activity within 2h) = %v, %v; want issue %d", got, err, old.ID)
		}
		_, err = s.IssueByTitle(ctx, "printer on fire", time.Now().Add(-7*24*time.Hour), false)
		wantErr(t, "IssueByTitle(created within 7d) of a 30-day-old issue", err, store.ErrNotFound)
		_, err = s.IssueByTitle(ctx, "printer", time.Time{}, false)
		wantErr(t, "IssueByTitle of a partial title", err, store.ErrNotFound)
	})
}
