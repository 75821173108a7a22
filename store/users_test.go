package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestUsers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		created := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
		alice := &store.User{Username: "alice", RealName: "Alice Liddell", Address: " Alice@Example.org ",
			Alternates: []string{"alice@work.example", "ALICE@example.org", "al@home.example"},
			Roles:      []string{"user", " admin", "user"}, Created: created}
		if err := s.CreateUser(ctx, alice); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if alice.ID == 0 || alice.Address != "Alice@Example.org" || !slices.Equal(alice.Alternates, []string{"alice@work.example", "al@home.example"}) ||
			!slices.Equal(alice.Roles, []string{"user", "admin"}) || !alice.Created.Equal(created.Truncate(time.Microsecond)) ||
			alice.Created.Location() != time.UTC {
			t.Errorf("after CreateUser: %+v", alice)
		}

		for _, addr := range []string{"alice@example.org", "ALICE@EXAMPLE.ORG", "Alice@Work.Example", " al@home.example"} {
			u, err := s.UserByAddress(ctx, addr)
			if err != nil {
				t.Errorf("UserByAddress(%q): %v", addr, err)
				continue
			}
			if u.ID != alice.ID {
				t.Errorf("UserByAddress(%q) = user %d, want %d", addr, u.ID, alice.ID)
			}
		}
		got, err := s.UserByID(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != "alice" || got.RealName != "Alice Liddell" || got.Address != "Alice@Example.org" ||
			!slices.Equal(got.Alternates, alice.Alternates) || !slices.Equal(got.Roles, alice.Roles) ||
			!got.Created.Equal(alice.Created) || got.Created.Location() != time.UTC || got.Bouncing || got.PasswordHash != "" {
			t.Errorf("UserByID = %+v, want %+v", got, alice)
		}
		for _, name := range []string{"alice", "Alice"} {
			if u, err := s.UserByUsername(ctx, name); err != nil || u.ID != alice.ID {
				t.Errorf("UserByUsername(%s) = %v, %v", name, u, err)
			}
		}

		// Address uniqueness spans primary and alternate addresses, without
		// regard to case; so are usernames.
		for _, u := range []store.User{
			{Username: "b1", Address: "alice@EXAMPLE.org"},                                          // primary vs primary
			{Username: "b2", Address: "ALICE@work.example"},                                         // primary vs alternate
			{Username: "b3", Address: "bob@example.org", Alternates: []string{"AL@home.example"}},   // alternate vs alternate
			{Username: "b4", Address: "bob@example.org", Alternates: []string{"alice@example.org"}}, // alternate vs primary
			{Username: "alice", Address: "bob@example.org"},                                         // username
			{Username: "ALICE", Address: "bob@example.org"},                                         // username, other case
		} {
			err := s.CreateUser(ctx, &u)
			wantErr(t, "CreateUser("+u.Username+")", err, store.ErrDuplicate)
		}
		if us, err := s.ListUsers(ctx, 0); err != nil || len(us) != 1 {
			t.Errorf("after refused creates: ListUsers = %d users, %v; want 1 (nothing half-written)", len(us), err)
		}

		// An empty username becomes the address; FreeUsername finds a free one.
		bob := &store.User{Address: "bob@example.org"}
		if err := s.CreateUser(ctx, bob); err != nil || bob.Username != "bob@example.org" || len(bob.Roles) != 0 || len(bob.Alternates) != 0 {
			t.Errorf("CreateUser(no username) = %+v, %v", bob, err)
		}
		for base, want := range map[string]string{"alice": "alice2", "ALICE": "alice2", "Carol": "carol", "": "user"} {
			if got, err := s.FreeUsername(ctx, base); err != nil || got != want {
				t.Errorf("FreeUsername(%q) = %q, %v; want %q", base, got, err, want)
			}
		}
		if err := s.CreateUser(ctx, &store.User{Username: "alice2", Address: "a2@example.org"}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.FreeUsername(ctx, "alice"); err != nil || got != "alice3" {
			t.Errorf("FreeUsername(alice) = %q, %v; want alice3", got, err)
		}

		// Update.
		hash, err := store.HashPasswordCost("secret", 1000)
		if err != nil {
			t.Fatal(err)
		}
		alice.RealName, alice.Roles, alice.PasswordHash, alice.Bouncing, alice.BounceCount = "Alice L.", []string{"admin"}, hash, true, 3
		if err := s.UpdateUser(ctx, alice); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		got, err = s.UserByAddress(ctx, "alice@work.example")
		if err != nil || got.RealName != "Alice L." || !slices.Equal(got.Roles, []string{"admin"}) || !got.Bouncing ||
			got.BounceCount != 3 || !store.CheckPassword(got.PasswordHash, "secret") || store.CheckPassword(got.PasswordHash, "Secret") {
			t.Errorf("after UpdateUser: %+v, %v", got, err)
		}
		wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, &store.User{ID: 999999}), store.ErrNotFound)

		// Alternates.
		if err := s.AddAddress(ctx, bob.ID, "Robert@Example.org"); err != nil {
			t.Fatalf("AddAddress: %v", err)
		}
		if err := s.AddAddress(ctx, bob.ID, "robert@example.org"); err != nil {
			t.Errorf("AddAddress(again) = %v, want nil (no-op)", err)
		}
		wantErr(t, "AddAddress(alice's)", s.AddAddress(ctx, bob.ID, "AL@home.example"), store.ErrDuplicate)
		wantErr(t, "AddAddress(no user)", s.AddAddress(ctx, 999999, "z@example.org"), store.ErrNotFound)
		if u, err := s.UserByAddress(ctx, "ROBERT@example.org"); err != nil || u.ID != bob.ID || !slices.Equal(u.Alternates, []string{"Robert@Example.org"}) {
			t.Errorf("UserByAddress(alternate) = %+v, %v", u, err)
		}
		wantErr(t, "RemoveAddress(primary)", s.RemoveAddress(ctx, bob.ID, "bob@example.org"), store.ErrNotFound)
		wantErr(t, "RemoveAddress(other's)", s.RemoveAddress(ctx, bob.ID, "al@home.example"), store.ErrNotFound)
		if err := s.RemoveAddress(ctx, bob.ID, "robert@EXAMPLE.org"); err != nil {
			t.Errorf("RemoveAddress: %v", err)
		}
		wantErr(t, "RemoveAddress(again)", s.RemoveAddress(ctx, bob.ID, "robert@example.org"), store.ErrNotFound)
		_, err = s.UserByAddress(ctx, "robert@example.org")
		wantErr(t, "UserByAddress(removed)", err, store.ErrNotFound)

		// Listing.
		us, err := s.ListUsers(ctx, 0)
		if err != nil || len(us) != 3 || us[0].ID != alice.ID || us[1].ID != bob.ID {
			t.Errorf("ListUsers(0) = %+v, %v", us, err)
		}
		if us, err := s.ListUsers(ctx, 2); err != nil || len(us) != 2 || !slices.Equal(us[0].Alternates, alice.Alternates) {
			t.Errorf("ListUsers(2) = %+v, %v", us, err)
		}

		// Not found, and malformed input.
		_, err = s.UserByID(ctx, 999999)
		wantErr(t, "UserByID", err, store.ErrNotFound)
		_, err = s.UserByAddress(ctx, "nobody@example.org")
		wantErr(t, "UserByAddress", err, store.ErrNotFound)
		_, err = s.UserByUsername(ctx, "nobody")
		wantErr(t, "UserByUsername", err, store.ErrNotFound)
		for _, u := range []store.User{{Address: ""}, {Address: "a b@example.org"}, {Address: "ok@example.org", Roles: []string{"a,b"}}} {
			if err := s.CreateUser(ctx, &u); err == nil || errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreateUser(%+v) = %v, want a validation error", u, err)
			}
		}
	})
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	full, err := store.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(full, "pbkdf2-sha256$600000$") || !store.CheckPassword(full, "correct horse") {
		t.Errorf("HashPassword = %q, or it does not check", full)
	}
	// The rest with a cheap cost: CheckPassword reads it from the hash.
	h1, err := store.HashPasswordCost("correct horse", 1000)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := store.HashPasswordCost("correct horse", 1000)
	if h1 == h2 || !store.CheckPassword(h2, "correct horse") {
		t.Error("two hashes of one password are equal (no salt?), or the second does not check")
	}
	if !store.CheckPassword(h1, "correct horse") || store.CheckPassword(h1, "correct horse ") || store.CheckPassword(h1, "") {
		t.Error("CheckPassword does not tell the password from another")
	}
	flipped := []byte(h1)
	flipped[len(flipped)-2] ^= 1
	for _, bad := range []string{"", "x", "pbkdf2-sha256$1$$", "md5$1$aa$bb", string(flipped)} {
		if store.CheckPassword(bad, "correct horse") {
			t.Errorf("CheckPassword(%q) = true", bad)
		}
	}
	if _, err := store.HashPassword(""); err == nil {
		t.Error("HashPassword(\"\") succeeded")
	}
}
