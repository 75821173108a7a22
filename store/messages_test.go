package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestMessages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		bob := mustUser(t, s, "bob@example.org")
		is := mustIssue(t, s, "Threads", alice.ID)
		other := mustIssue(t, s, "Other", alice.ID)
		t0 := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)

		// Stored out of date order: Messages orders by date, then id.
		later := &store.Message{IssueID: is.ID, AuthorID: bob.ID, Date: t0.Add(time.Hour), MessageID: "<2@example.org>",
			InReplyTo: "<1@example.org>", References: []string{"<0@example.org>", "<1@example.org>"},
			Content: "Fixed.", FullText: "Fixed.\n> It crashes.", Summary: "Fixed."}
		first := &store.Message{IssueID: is.ID, AuthorID: alice.ID, Date: t0, MessageID: "<1@example.org>",
			Content: "It crashes.", FullText: "It crashes.\n-- \nAlice", Summary: "It crashes."}
		sameTime := &store.Message{IssueID: is.ID, AuthorID: alice.ID, Date: t0, MessageID: "<1b@example.org>", Content: "Also."}
		for _, m := range []*store.Message{later, first, sameTime} {
			if err := s.CreateMessage(ctx, m); err != nil {
				t.Fatalf("CreateMessage(%s): %v", m.MessageID, err)
			}
		}
		mustMessage(t, s, other.ID, alice.ID, "<other@example.org>", "elsewhere")

		ms, err := s.Messages(ctx, is.ID)
		if err != nil {
			t.Fatal(err)
		}
		var order []int64
		for _, m := range ms {
			order = append(order, m.ID)
		}
		if !slices.Equal(order, []int64{first.ID, sameTime.ID, later.ID}) {
			t.Errorf("Messages order = %v, want %v", order, []int64{first.ID, sameTime.ID, later.ID})
		}
		got, err := s.Message(ctx, later.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.IssueID != is.ID || got.AuthorID != bob.ID || !got.Date.Equal(later.Date) || got.Date.Location() != time.UTC ||
			got.InReplyTo != "<1@example.org>" || !slices.Equal(got.References, later.References) ||
			got.Content != "Fixed." || got.FullText != "Fixed.\n> It crashes." || got.Summary != "Fixed." || got.InboundID != 0 {
			t.Errorf("Message = %+v, want %+v", got, later)
		}
		if len(ms[0].References) != 0 {
			t.Errorf("References of a message without = %q", ms[0].References)
		}

		// Threading and idempotency.
		if m, err := s.MessageByMessageID(ctx, "<1@example.org>"); err != nil || m.ID != first.ID {
			t.Errorf("MessageByMessageID = %+v, %v", m, err)
		}
		if m, err := s.FiledMessage(ctx, "<2@example.org>", bob.ID); err != nil || m.ID != later.ID {
			t.Errorf("FiledMessage(bob) = %+v, %v", m, err)
		}
		_, err = s.FiledMessage(ctx, "<2@example.org>", alice.ID)
		wantErr(t, "FiledMessage(other author)", err, store.ErrNotFound)
		_, err = s.MessageByMessageID(ctx, "<nonesuch@example.org>")
		wantErr(t, "MessageByMessageID(missing)", err, store.ErrNotFound)
		_, err = s.Message(ctx, 999999)
		wantErr(t, "Message(missing)", err, store.ErrNotFound)

		// The same author filing the same Message-ID again is a duplicate,
		// even on another issue; another author may reuse it.
		err = s.CreateMessage(ctx, &store.Message{IssueID: other.ID, AuthorID: bob.ID, MessageID: "<2@example.org>", Content: "again"})
		wantErr(t, "CreateMessage(same author, same id)", err, store.ErrDuplicate)
		reuse := &store.Message{IssueID: other.ID, AuthorID: alice.ID, MessageID: "<2@example.org>", Content: "reused"}
		if err := s.CreateMessage(ctx, reuse); err != nil {
			t.Errorf("CreateMessage(other author, same id): %v", err)
		}
		if m, err := s.MessageByMessageID(ctx, "<2@example.org>"); err != nil || m.ID != later.ID {
			t.Errorf("MessageByMessageID(shared id) = %+v, %v; want the first stored", m, err)
		}
		if ms, err := s.Messages(ctx, other.ID); err != nil || len(ms) != 2 {
			t.Errorf("Messages(other) = %d, %v; want 2 (the duplicate not stored)", len(ms), err)
		}

		for _, bad := range []store.Message{
			{IssueID: is.ID, AuthorID: alice.ID},
			{IssueID: is.ID, AuthorID: alice.ID, MessageID: "<a b@x>"},
			{IssueID: is.ID, AuthorID: alice.ID, MessageID: "<ok@x>", References: []string{""}},
		} {
			if err := s.CreateMessage(ctx, &bad); err == nil || errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreateMessage(%+v) = %v, want a validation error", bad, err)
			}
		}
	})
}

func TestFiles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		is := mustIssue(t, s, "Files", u.ID)
		m := mustMessage(t, s, is.ID, u.ID, "<f@x>", "see attached")
		data := []byte("line 1\r\nbinary \x00\xff\xfe\r\n")
		f := &store.File{MessageID: m.ID, Name: "trace.bin", Type: "application/octet-stream", Data: data, Size: 1, SHA256: "bogus"}
		if err := s.CreateFile(ctx, f); err != nil {
			t.Fatalf("CreateFile: %v", err)
		}
		sum := sha256.Sum256(data)
		if f.ID == 0 || f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("after CreateFile: id %d size %d sha %s", f.ID, f.Size, f.SHA256)
		}
		empty := &store.File{MessageID: m.ID, Name: "empty.txt", Type: "text/plain"}
		if err := s.CreateFile(ctx, empty); err != nil {
			t.Fatalf("CreateFile(empty): %v", err)
		}

		fs, err := s.Files(ctx, m.ID)
		if err != nil || len(fs) != 2 {
			t.Fatalf("Files = %+v, %v", fs, err)
		}
		if fs[0].ID != f.ID || fs[0].Name != "trace.bin" || fs[0].Type != "application/octet-stream" || fs[0].Size != f.Size ||
			fs[0].SHA256 != f.SHA256 || fs[0].Data != nil {
			t.Errorf("Files[0] = %+v (Data must not be loaded)", fs[0])
		}
		got, err := s.File(ctx, f.ID)
		if err != nil || !bytes.Equal(got.Data, data) || got.MessageID != m.ID {
			t.Errorf("File = %+v, %v", got, err)
		}
		got, err = s.File(ctx, empty.ID)
		if err != nil || got.Data == nil || len(got.Data) != 0 || got.Size != 0 {
			t.Errorf("File(empty) = %+v, %v", got, err)
		}
		_, err = s.File(ctx, 999999)
		wantErr(t, "File(missing)", err, store.ErrNotFound)
		if fs, err := s.Files(ctx, 999999); err != nil || len(fs) != 0 {
			t.Errorf("Files(missing) = %v, %v", fs, err)
		}
	})
}

func TestChanges(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		is := mustIssue(t, s, "Journal", u.ID)
		m := mustMessage(t, s, is.ID, u.ID, "<j@x>", "/status resolved")
		t0 := time.Date(2026, 7, 8, 9, 10, 11, 0, time.UTC)
		chs := []*store.Change{
			{IssueID: is.ID, MessageID: m.ID, ActorID: u.ID, At: t0.Add(time.Minute), Property: "status", Old: "unread", New: "resolved"},
			{IssueID: is.ID, ActorID: u.ID, At: t0, Property: "keyword", New: "+a -b"},
			{IssueID: is.ID, At: t0.Add(time.Minute), Property: "nosy", Old: "", New: "+bob"}, // by the system
		}
		for _, ch := range chs {
			if err := s.AddChange(ctx, ch); err != nil {
				t.Fatalf("AddChange: %v", err)
			}
		}
		got, err := s.Changes(ctx, is.ID)
		if err != nil || len(got) != 3 {
			t.Fatalf("Changes = %+v, %v", got, err)
		}
		want := []*store.Change{chs[1], chs[0], chs[2]} // by time, then id
		for i := range want {
			if got[i] != *want[i] {
				t.Errorf("Changes[%d] = %+v, want %+v", i, got[i], *want[i])
			}
		}
		if got[2].ActorID != 0 || got[2].MessageID != 0 {
			t.Errorf("system change = %+v", got[2])
		}
		now := &store.Change{IssueID: is.ID, Property: "title", New: "x"}
		if err := s.AddChange(ctx, now); err != nil || now.At.IsZero() || time.Since(now.At) > time.Minute {
			t.Errorf("AddChange(zero At) = %+v, %v; want At = now", now, err)
		}
	})
}

// TestAddChanges: one statement writes a mail's changes in order, with
// the same rows AddChange would write, on both stores.
func TestAddChanges(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		is := mustIssue(t, s, "Journal", u.ID)
		m := mustMessage(t, s, is.ID, u.ID, "<j@x>", "/status resolved")
		t0 := time.Date(2026, 7, 8, 9, 10, 11, 0, time.UTC)
		chs := []*store.Change{
			{IssueID: is.ID, MessageID: m.ID, ActorID: u.ID, At: t0, Property: "status", Old: "unread", New: "resolved"},
			{IssueID: is.ID, ActorID: u.ID, At: t0, Property: "keyword", New: "+a -b"},
			{IssueID: is.ID, Property: "nosy", New: "+bob"}, // by the system, now
		}
		err := s.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.AddChanges(ctx, nil); err != nil {
				return err
			}
			return tx.AddChanges(ctx, chs)
		})
		if err != nil {
			t.Fatalf("AddChanges: %v", err)
		}
		if chs[2].At.IsZero() || time.Since(chs[2].At) > time.Minute {
			t.Errorf("zero At became %v, want now", chs[2].At)
		}
		got, err := s.Changes(ctx, is.ID)
		if err != nil || len(got) != 3 {
			t.Fatalf("Changes = %+v, %v", got, err)
		}
		for i := range chs {
			if got[i] != *chs[i] {
				t.Errorf("Changes[%d] = %+v, want %+v", i, got[i], *chs[i])
			}
		}
		if !(chs[0].ID < chs[1].ID && chs[1].ID < chs[2].ID) {
			t.Errorf("ids %d, %d, %d not in the order given", chs[0].ID, chs[1].ID, chs[2].ID)
		}
	})
}
