package store_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		is := mustIssue(t, s, "Tokens", u.ID)
		if err := s.CreateToken(ctx, "unsub-1", u.ID, is.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(ctx, "unsub-all", u.ID, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateBounceToken(ctx, "bounce-1", u.ID, is.ID); err != nil {
			t.Fatal(err)
		}
		if uid, iid, err := s.Token(ctx, "unsub-1"); err != nil || uid != u.ID || iid != is.ID {
			t.Errorf("Token(unsub-1) = %d, %d, %v", uid, iid, err)
		}
		if uid, iid, err := s.Token(ctx, "unsub-all"); err != nil || uid != u.ID || iid != 0 {
			t.Errorf("Token(unsub-all) = %d, %d, %v", uid, iid, err)
		}
		if uid, iid, err := s.BounceToken(ctx, "bounce-1"); err != nil || uid != u.ID || iid != is.ID {
			t.Errorf("BounceToken = %d, %d, %v", uid, iid, err)
		}
		// The kinds do not mix: a bounce token unsubscribes no one.
		_, _, err := s.Token(ctx, "bounce-1")
		wantErr(t, "Token(bounce token)", err, store.ErrNotFound)
		_, _, err = s.BounceToken(ctx, "unsub-1")
		wantErr(t, "BounceToken(unsubscribe token)", err, store.ErrNotFound)
		_, _, err = s.Token(ctx, "nonesuch")
		wantErr(t, "Token(missing)", err, store.ErrNotFound)
		wantErr(t, "CreateToken(dup)", s.CreateToken(ctx, "unsub-1", u.ID, 0), store.ErrDuplicate)
		wantErr(t, "CreateBounceToken(dup of other kind)", s.CreateBounceToken(ctx, "unsub-1", u.ID, 0), store.ErrDuplicate)
		if err := s.CreateToken(ctx, "", u.ID, 0); err == nil {
			t.Error("CreateToken(empty) succeeded")
		}
	})
}

func TestPollState(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		cur, err := s.PollCursor(ctx, "imaps://x/INBOX")
		if err != nil || cur != (store.Cursor{}) {
			t.Errorf("PollCursor(new) = %+v, %v", cur, err)
		}
		want := store.Cursor{Mailbox: "imaps://x/INBOX", UIDValidity: 4294967295, LastUID: 4294967290}
		if err := s.SetPollCursor(ctx, store.Cursor{Mailbox: want.Mailbox, UIDValidity: 1, LastUID: 2}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPollCursor(ctx, want); err != nil {
			t.Fatal(err)
		}
		if cur, err := s.PollCursor(ctx, want.Mailbox); err != nil || cur != want {
			t.Errorf("PollCursor = %+v, %v; want %+v", cur, err, want)
		}
		if cur, err := s.PollCursor(ctx, "other"); err != nil || cur.LastUID != 0 {
			t.Errorf("PollCursor(other) = %+v, %v", cur, err)
		}

		const box = "pop3://x"
		for _, u := range []string{"a", "b", "c", "a"} {
			if err := s.AddUIDL(ctx, box, u); err != nil {
				t.Fatalf("AddUIDL(%s): %v", u, err)
			}
		}
		if err := s.AddUIDL(ctx, "other", "z"); err != nil {
			t.Fatal(err)
		}
		seen := func(box, u string) bool {
			t.Helper()
			ok, err := s.SeenUIDL(ctx, box, u)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !seen(box, "a") || !seen(box, "c") || seen(box, "z") || seen("other", "a") {
			t.Error("SeenUIDL disagrees with AddUIDL")
		}
		// The server now lists b and d: a and c go; other mailboxes keep theirs.
		if err := s.ForgetUIDLs(ctx, box, []string{"b", "d"}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range []string{"a", "b", "c", "d"} {
			if seen(box, u) {
				got = append(got, u)
			}
		}
		if !slices.Equal(got, []string{"b"}) || !seen("other", "z") {
			t.Errorf("after ForgetUIDLs: %v seen, other/z %v; want [b], true", got, seen("other", "z"))
		}
		// Many at once (more than one DELETE's worth).
		var many []string
		for i := range 1234 {
			many = append(many, fmt.Sprint("m", i))
		}
		err = s.Tx(ctx, func(tx *store.Tx) error {
			for _, u := range many {
				if err := tx.AddUIDL(ctx, box, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetUIDLs(ctx, box, many[1000:]); err != nil {
			t.Fatal(err)
		}
		if seen(box, "m0") || seen(box, "m999") || !seen(box, "m1000") || !seen(box, "m1233") || seen(box, "b") {
			t.Error("ForgetUIDLs(many) kept or dropped the wrong UIDLs")
		}
	})
}
