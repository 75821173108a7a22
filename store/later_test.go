package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestLater: writes queued with the …Later methods are there for every
// later statement of the transaction and after its commit, a savepoint
// that fails drops its queued writes unsent, and an archive row written
// at commit carries its outcome and the message that points at it. On
// SQLite the methods write at once; the same assertions hold.
func TestLater(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "later@example.org")
		v := mustUser(t, s, "other@example.org")
		at := time.Date(2026, 11, 21, 6, 30, 0, 123456000, time.UTC)
		var issueID, msgID, inID, undoneID, keptID int64
		err := s.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.ReserveInbound(ctx, 2); err != nil {
				return err
			}
			in := &store.Inbound{Source: "smtp", Raw: []byte("raw\x00\xff"), EnvelopeTo: []string{"tracker@example.org", "x@y"}, MessageID: "<q@x>"}
			if err := tx.InsertInboundLater(ctx, in); err != nil {
				return err
			}
			if in.ID == 0 || in.Status != store.InboundReceived || in.SHA256 == "" {
				t.Errorf("InsertInboundLater left %+v: want an id, status received and the hash", in)
			}
			inID = in.ID
			is := mustIssue(t, tx, "Queued", u.ID)
			// The message points at the archive row before the row is
			// written (PostgreSQL checks that foreign key at commit).
			m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: "<q@x>", Content: "queued", InboundID: in.ID}
			if err := tx.CreateMessage(ctx, m); err != nil {
				return err
			}
			issueID, msgID = is.ID, m.ID
			if err := tx.MarkFiled(ctx, "<q@x>", u.ID, 0, 0); err != nil {
				return err
			}
			chs := []*store.Change{
				{IssueID: is.ID, MessageID: m.ID, ActorID: u.ID, At: at, Property: "status", Old: "", New: "unread"},
				{IssueID: is.ID, ActorID: u.ID, At: at, Property: "priority", Old: "", New: "bug"},
				{IssueID: is.ID, At: at, Property: "title", Old: "it's", New: `"quoted" \ {braces}, commas`},
			}
			if err := tx.AddChangesLater(ctx, chs); err != nil {
				return err
			}
			for _, id := range []int64{u.ID, v.ID, u.ID} {
				if err := tx.AddNosyLater(ctx, is.ID, id); err != nil {
					return err
				}
			}
			// Read inside the transaction: the queue goes first.
			nosy, err := tx.Nosy(ctx, is.ID)
			if err != nil {
				return err
			}
			if len(nosy) != 2 {
				t.Errorf("Nosy inside the Tx after AddNosyLater = %v, want both users", nosy)
			}
			in.Status, in.IssueID, in.MsgID, in.Reason = store.InboundRejected, is.ID, 0, "first"
			if err := tx.UpdateInboundLater(ctx, in); err != nil {
				return err
			}
			in.Status, in.MsgID, in.Reason = store.InboundFiled, m.ID, "ok" // replaces the first
			if err := tx.UpdateInboundLater(ctx, in); err != nil {
				return err
			}
			for _, r := range []string{"a@example.org", "b@example.org"} {
				if err := tx.EnqueueLater(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, MsgID: m.ID, Recipient: r, Payload: []byte{0, 1, '\\', '"'}}); err != nil {
					return err
				}
			}
			// A savepoint that fails drops what it queued, and keeps the
			// archive rows queued before it; one that succeeds keeps all.
			bad := errors.New("bad")
			if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				if err := tx.AddChangesLater(ctx, []*store.Change{{IssueID: is.ID, Property: "status", New: "undone"}}); err != nil {
					return err
				}
				undone := &store.Inbound{Source: "smtp", Raw: []byte("undone")}
				if err := tx.InsertInboundLater(ctx, undone); err != nil {
					return err
				}
				undoneID = undone.ID
				// Never sent: on PostgreSQL its foreign key would fail
				// the rollback itself. (SQLite checks at once.)
				if err := tx.AddNosyLater(ctx, is.ID+1000, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				return bad
			}); err != bad {
				t.Errorf("Savepoint = %v, want bad", err)
			}
			return tx.Savepoint(ctx, func(tx *store.Tx) error {
				kept := &store.Inbound{Source: "imap:x", Raw: []byte("kept"), Status: store.InboundIgnored, Reason: "kept"}
				if err := tx.InsertInboundLater(ctx, kept); err != nil { // takes a reservation of its own
					return err
				}
				keptID = kept.ID
				return tx.EnqueueLater(ctx, &store.Outbox{Kind: "reply", Recipient: "c@example.org"})
			})
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		chs, err := s.Changes(ctx, issueID)
		if err != nil {
			t.Fatal(err)
		}
		var props []string
		for _, ch := range chs {
			props = append(props, ch.Property)
			if !ch.At.Equal(at) {
				t.Errorf("change %s at %v, want %v", ch.Property, ch.At, at)
			}
		}
		if !slices.Equal(props, []string{"status", "priority", "title"}) {
			t.Errorf("changes = %v, want status, priority, title in that order (and not the undone one)", props)
		}
		if len(chs) == 3 {
			if chs[0].MessageID != msgID || chs[1].MessageID != 0 || chs[2].ActorID != 0 || chs[2].Old != "it's" || chs[2].New != `"quoted" \ {braces}, commas` {
				t.Errorf("changes = %+v", chs)
			}
		}
		// No UpdateFiled: the mail's message says where it went.
		issue, filedMsg, err := s.Filed(ctx, "<q@x>", u.ID)
		if err != nil || issue != issueID || filedMsg != msgID {
			t.Errorf("Filed = %d, %d, %v; want %d, %d", issue, filedMsg, err, issueID, msgID)
		}
		in, err := s.Inbound(ctx, inID)
		if err != nil || in.Status != store.InboundFiled || in.IssueID != issueID || in.MsgID != msgID || in.Reason != "ok" ||
			string(in.Raw) != "raw\x00\xff" || !slices.Equal(in.EnvelopeTo, []string{"tracker@example.org", "x@y"}) || in.MessageID != "<q@x>" {
			t.Errorf("Inbound = %+v, %v", in, err)
		}
		if m, err := s.Message(ctx, msgID); err != nil || m.InboundID != inID {
			t.Errorf("Message = %+v, %v; want inbound %d", m, err, inID)
		}
		// (SQLite may give its rolled back id to the next row.)
		if in, err := s.Inbound(ctx, undoneID); !errors.Is(err, store.ErrNotFound) && (err != nil || string(in.Raw) == "undone") {
			t.Errorf("archive row of the failed savepoint: %+v, %v; want none", in, err)
		}
		if in, err := s.Inbound(ctx, keptID); err != nil || in.Status != store.InboundIgnored || in.Reason != "kept" || string(in.Raw) != "kept" {
			t.Errorf("archive row of the savepoint that succeeded = %+v, %v", in, err)
		}
		out, err := s.ListOutbox(ctx, store.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var recips []string
		for _, o := range out {
			recips = append(recips, o.Recipient)
			if o.Status != store.OutboxPending || o.NextAttempt.IsZero() || !o.SentAt.IsZero() {
				t.Errorf("outbox row %+v: want pending, due, not sent", o)
			}
		}
		if !slices.Equal(recips, []string{"c@example.org", "b@example.org", "a@example.org"}) { // newest first
			t.Errorf("outbox recipients = %v", recips)
		}
		full, err := s.Outbox(ctx, out[len(out)-1].ID)
		if err != nil || string(full.Payload) != "\x00\x01\\\"" {
			t.Errorf("outbox payload = %q, %v", full.Payload, err)
		}

		// An update of an archive row that is not there fails.
		err = s.Tx(ctx, func(tx *store.Tx) error {
			return tx.UpdateInboundLater(ctx, &store.Inbound{ID: inID + 1000, Status: store.InboundFiled})
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tx with an update of a missing archive row = %v, want ErrNotFound", err)
		}
		// A NUL cannot go into PostgreSQL text: the transaction fails
		// at the queue's statement, nothing stays.
		if s.Driver() == "postgres" {
			err = s.Tx(ctx, func(tx *store.Tx) error {
				if err := tx.AddChangesLater(ctx, []*store.Change{{IssueID: issueID, Property: "title", New: "a\x00b"}}); err != nil {
					return err
				}
				return tx.Savepoint(ctx, func(tx *store.Tx) error { return nil })
			})
			if err == nil {
				t.Errorf("Tx with a NUL in a queued text committed")
			}
			if chs, _ := s.Changes(ctx, issueID); len(chs) != 3 {
				t.Errorf("%d changes after the failed Tx, want 3", len(chs))
			}
		}
		// A message that points at no archive row fails the
		// transaction, at the latest at its commit.
		err = s.Tx(ctx, func(tx *store.Tx) error {
			return tx.CreateMessage(ctx, &store.Message{IssueID: issueID, AuthorID: u.ID, MessageID: "<dangling@x>", Content: "x", InboundID: inID + 1000})
		})
		if err == nil {
			t.Errorf("Tx with a message pointing at no archive row committed")
		}
	})
}

// TestArchiveChunks: the archive rows of a transaction go at commit in
// statements of a bounded size; every row arrives whole, whichever
// statement carried it.
func TestArchiveChunks(t *testing.T) {
	store.SetArchiveChunk(t, 10)
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		raws := []string{"six666", "six666", strings.Repeat("big", 7), "3!!", ""}
		var ids []int64
		err := s.Tx(ctx, func(tx *store.Tx) error {
			for i, raw := range raws {
				in := &store.Inbound{Source: "import", Raw: []byte(raw), MessageID: fmt.Sprintf("<%d@chunk>", i)}
				if err := tx.InsertInboundLater(ctx, in); err != nil {
					return err
				}
				ids = append(ids, in.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			in, err := s.Inbound(ctx, id)
			if err != nil || string(in.Raw) != raws[i] || in.MessageID != fmt.Sprintf("<%d@chunk>", i) {
				t.Errorf("row %d: %+v, %v; want raw %q", i, in, err, raws[i])
			}
		}
	})
}
