package store_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestOutbox(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		is := mustIssue(t, s, "Outbox", u.ID)
		m := mustMessage(t, s, is.ID, u.ID, "<o@x>", "hello")

		t0 := time.Now().UTC().Truncate(time.Microsecond)
		a := &store.Outbox{Kind: "notify", IssueID: is.ID, MsgID: m.ID, Recipient: "bob@example.org", Payload: []byte("note\x00\xff")}
		b := &store.Outbox{Kind: "reply", Recipient: "stranger@example.org", NextAttempt: t0.Add(time.Hour)}
		c := &store.Outbox{Kind: "notify", IssueID: is.ID, Recipient: "carol@example.org"}
		for _, o := range []*store.Outbox{a, b, c} {
			if err := s.Enqueue(ctx, o); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
		}
		if a.ID == 0 || a.Status != "pending" || a.Created.IsZero() || !a.NextAttempt.Equal(a.Created) || a.Attempts != 0 {
			t.Errorf("after Enqueue: %+v", a)
		}
		got, err := s.Outbox(ctx, a.ID)
		if err != nil || got.Kind != "notify" || got.IssueID != is.ID || got.MsgID != m.ID || got.Recipient != "bob@example.org" ||
			!bytes.Equal(got.Payload, a.Payload) || !got.Created.Equal(a.Created) || !got.SentAt.IsZero() {
			t.Errorf("Outbox = %+v, %v", got, err)
		}
		if got, err := s.Outbox(ctx, c.ID); err != nil || got.Payload == nil || len(got.Payload) != 0 || got.MsgID != 0 {
			t.Errorf("Outbox(no payload) = %+v, %v", got, err)
		}

		// Claim what is due: a and c, not b (due in an hour).
		now := t0.Add(30 * time.Second) // a and c are due by then
		lease := 5 * time.Minute
		claimed, err := s.ClaimOutbox(ctx, now, 10, lease)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 2 || claimed[0].ID != a.ID || claimed[1].ID != c.ID {
			t.Fatalf("ClaimOutbox = %+v; want a and c", claimed)
		}
		if !claimed[0].NextAttempt.Equal(now.Add(lease)) || !bytes.Equal(claimed[0].Payload, a.Payload) || claimed[0].Status != "pending" {
			t.Errorf("claimed row = %+v; want next attempt at the lease's end, payload", claimed[0])
		}
		// Leased: nobody else gets them, until the lease ends.
		if again, err := s.ClaimOutbox(ctx, now.Add(lease-time.Second), 10, lease); err != nil || len(again) != 0 {
			t.Errorf("ClaimOutbox during the lease = %+v, %v; want none", again, err)
		}
		again, err := s.ClaimOutbox(ctx, now.Add(lease), 1, lease)
		if err != nil || len(again) != 1 || again[0].ID != a.ID {
			t.Errorf("ClaimOutbox after the lease (limit 1) = %+v, %v; want a again (a worker died)", again, err)
		}

		// a: sent. c: retried, then failed.
		sentAt := now.Add(time.Minute)
		if err := s.MarkSent(ctx, a.ID, sentAt); err != nil {
			t.Fatal(err)
		}
		next := now.Add(10 * time.Minute)
		if err := s.MarkRetry(ctx, c.ID, next, "451 try later"); err != nil {
			t.Fatal(err)
		}
		got, err = s.Outbox(ctx, c.ID)
		if err != nil || got.Status != "pending" || got.Attempts != 1 || got.LastError != "451 try later" || !got.NextAttempt.Equal(next) {
			t.Errorf("after MarkRetry: %+v, %v", got, err)
		}
		if early, err := s.ClaimOutbox(ctx, next.Add(-time.Second), 10, lease); err != nil || len(early) != 0 {
			t.Errorf("ClaimOutbox before the retry time = %+v, %v", early, err)
		}
		if due, err := s.ClaimOutbox(ctx, next, 10, lease); err != nil || len(due) != 1 || due[0].ID != c.ID {
			t.Errorf("ClaimOutbox at the retry time = %+v, %v; want c", due, err)
		}
		if err := s.MarkFailed(ctx, c.ID, "550 no such user"); err != nil {
			t.Fatal(err)
		}
		got, err = s.Outbox(ctx, c.ID)
		if err != nil || got.Status != "failed" || got.Attempts != 2 || got.LastError != "550 no such user" {
			t.Errorf("after MarkFailed: %+v, %v", got, err)
		}
		got, err = s.Outbox(ctx, a.ID)
		if err != nil || got.Status != "sent" || !got.SentAt.Equal(sentAt) || got.Attempts != 0 {
			t.Errorf("after MarkSent: %+v, %v", got, err)
		}
		// Sent and failed rows are never claimed again.
		if rest, err := s.ClaimOutbox(ctx, next.Add(24*time.Hour), 10, lease); err != nil || len(rest) != 1 || rest[0].ID != b.ID {
			t.Errorf("ClaimOutbox of the rest = %+v, %v; want b only", rest, err)
		}

		list, err := s.ListOutbox(ctx, store.OutboxFilter{})
		if err != nil || len(list) != 3 || list[0].ID != c.ID || list[2].ID != a.ID || list[0].Payload != nil {
			t.Errorf("ListOutbox = %+v, %v; want 3, newest first, without payload", list, err)
		}
		for status, want := range map[string]int64{"sent": a.ID, "failed": c.ID, "pending": b.ID} {
			if l, err := s.ListOutbox(ctx, store.OutboxFilter{Status: status}); err != nil || len(l) != 1 || l[0].ID != want {
				t.Errorf("ListOutbox(%s) = %+v, %v", status, l, err)
			}
		}
		if l, err := s.ListOutbox(ctx, store.OutboxFilter{Limit: 1}); err != nil || len(l) != 1 {
			t.Errorf("ListOutbox(limit 1) = %+v, %v", l, err)
		}

		wantErr(t, "MarkSent(missing)", s.MarkSent(ctx, 999999, now), store.ErrNotFound)
		wantErr(t, "MarkRetry(missing)", s.MarkRetry(ctx, 999999, now, "x"), store.ErrNotFound)
		wantErr(t, "MarkFailed(missing)", s.MarkFailed(ctx, 999999, "x"), store.ErrNotFound)
		_, err = s.Outbox(ctx, 999999)
		wantErr(t, "Outbox(missing)", err, store.ErrNotFound)
		for _, bad := range []store.Outbox{{Recipient: "x@example.org"}, {Kind: "notify"}, {Kind: "notify", Recipient: "x", Status: "lost"}} {
			if err := s.Enqueue(ctx, &bad); err == nil {
				t.Errorf("Enqueue(%+v) succeeded", bad)
			}
		}
		if _, err := s.ClaimOutbox(ctx, now, 0, lease); err == nil {
			t.Error("ClaimOutbox(limit 0) succeeded")
		}
	})
}

// TestOutboxConcurrentClaim: workers in two Store instances (two trackerd
// processes) claim at once; every row is claimed exactly once.
func TestOutboxConcurrentClaim(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		ctx := t.Context()
		s1 := storetest.Open(t, o)
		s2 := storetest.Open(t, o)
		const rows = 300
		err := s1.Tx(ctx, func(tx *store.Tx) error {
			for i := range rows {
				if err := tx.Enqueue(ctx, &store.Outbox{Kind: "notify", Recipient: fmt.Sprintf("r%d@example.org", i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		now := time.Now().Add(time.Second)
		var (
			mu     sync.Mutex
			seen   = map[int64]int{}
			errs   []error
			wg     sync.WaitGroup
			stores = []*store.Store{s1, s2}
		)
		for w := range 6 {
			wg.Go(func() {
				s := stores[w%2]
				for {
					claimed, err := s.ClaimOutbox(ctx, now, 7, time.Hour)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					if len(claimed) == 0 {
						return
					}
					mu.Lock()
					for _, c := range claimed {
						seen[c.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("ClaimOutbox errors: %v", errs)
		}
		if len(seen) != rows {
			t.Errorf("%d rows claimed, want %d", len(seen), rows)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("row %d claimed %d times", id, n)
			}
		}
	})
}

// TestOutboxRetryLeavesClaimedRows (issue 9): `outbox retry` must not
// reset a row a notifier holds (it is being sent: another process would
// send it too), but does take rows given back unsent (ReleaseOutbox),
// rows whose holder died (lease over), and rows deferred by a retry.
func TestOutboxRetryLeavesClaimedRows(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		var rows []*store.Outbox
		for i := range 3 {
			o := &store.Outbox{Kind: "reply", Recipient: fmt.Sprintf("r%d@example.org", i)}
			if err := s.Enqueue(ctx, o); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, o)
		}
		claimed, err := s.ClaimOutbox(ctx, time.Now(), 10, time.Hour)
		if err != nil || len(claimed) != 3 {
			t.Fatalf("ClaimOutbox = %d rows, %v", len(claimed), err)
		}
		retry := func() []int64 {
			t.Helper()
			got, err := s.RetryOutbox(ctx, store.OutboxSelection{Status: store.OutboxPending})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, o := range got {
				ids = append(ids, o.ID)
			}
			return ids
		}
		if ids := retry(); len(ids) != 0 {
			t.Fatalf("RetryOutbox of held rows reset %v; want none", ids)
		}
		// Held rows stay held: nobody else can claim them.
		if again, err := s.ClaimOutbox(ctx, time.Now(), 10, time.Hour); err != nil || len(again) != 0 {
			t.Fatalf("ClaimOutbox after the retry = %d rows, %v; want none", len(again), err)
		}
		// Given back unsent (a relay outage), deferred by a retry, renewed.
		if _, err := s.ReleaseOutbox(ctx, []int64{rows[0].ID}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkRetry(ctx, rows[1].ID, time.Now().Add(time.Hour), "451 later"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RenewOutbox(ctx, []int64{rows[2].ID}, time.Now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ids := retry(); len(ids) != 2 || ids[0] != rows[0].ID || ids[1] != rows[1].ID {
			t.Fatalf("RetryOutbox = %v; want the released and the deferred row, %d and %d", ids, rows[0].ID, rows[1].ID)
		}
		// The holder of the third died: after its lease, retry takes it.
		if _, err := s.RenewOutbox(ctx, []int64{rows[2].ID}, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if ids := retry(); len(ids) != 3 {
			t.Fatalf("RetryOutbox after the lease = %v; want all three", ids)
		}
	})
}
