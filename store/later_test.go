package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestLater: writes queued with the …Later methods are there for every
// later statement of the transaction and after its commit, a savepoint
// that fails drops its queued writes unsent, and a queued update of a
// missing row fails the transaction. On SQLite the methods write at once;
// the same assertions hold.
func TestLater(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "later@example.org")
		v := mustUser(t, s, "other@example.org")
		at := time.Date(2026, 11, 21, 6, 30, 0, 123456000, time.UTC)
		var issueID, msgID, inID int64
		err := s.Tx(ctx, func(tx *store.Tx) error {
			is := mustIssue(t, tx, "Queued", u.ID)
			m := mustMessage(t, tx, is.ID, u.ID, "<q@x>", "queued")
			issueID, msgID = is.ID, m.ID
			in := &store.Inbound{Source: "smtp", Raw: []byte("raw"), MessageID: "<q@x>"}
			if err := tx.InsertInbound(ctx, in); err != nil {
				return err
			}
			inID = in.ID
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
			if err := tx.UpdateFiledLater(ctx, "<q@x>", u.ID, is.ID, 0); err != nil {
				return err
			}
			if err := tx.UpdateFiledLater(ctx, "<q@x>", u.ID, is.ID, m.ID); err != nil { // replaces the first
				return err
			}
			in.Status, in.IssueID, in.MsgID, in.Reason = store.InboundFiled, is.ID, m.ID, "ok"
			if err := tx.UpdateInboundLater(ctx, in); err != nil {
				return err
			}
			for _, r := range []string{"a@example.org", "b@example.org"} {
				if err := tx.EnqueueLater(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, MsgID: m.ID, Recipient: r, Payload: []byte{0, 1, '\\', '"'}}); err != nil {
					return err
				}
			}
			// A savepoint that fails drops what it queued; one that
			// succeeds keeps it.
			bad := errors.New("bad")
			if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				if err := tx.AddChangesLater(ctx, []*store.Change{{IssueID: is.ID, Property: "status", New: "undone"}}); err != nil {
					return err
				}
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
		issue, filedMsg, err := s.Filed(ctx, "<q@x>", u.ID)
		if err != nil || issue != issueID || filedMsg != msgID {
			t.Errorf("Filed = %d, %d, %v; want %d, %d", issue, filedMsg, err, issueID, msgID)
		}
		in, err := s.Inbound(ctx, inID)
		if err != nil || in.Status != store.InboundFiled || in.IssueID != issueID || in.MsgID != msgID || in.Reason != "ok" {
			t.Errorf("Inbound = %+v, %v", in, err)
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

		// An update of a row that is not there fails the transaction,
		// at the latest at its commit.
		err = s.Tx(ctx, func(tx *store.Tx) error {
			return tx.UpdateInboundLater(ctx, &store.Inbound{ID: inID + 1000, Status: store.InboundFiled})
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tx with a queued update of a missing row = %v, want ErrNotFound", err)
		}
	})
}
