package notify

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWorkerRelayDown: with the relay down, Run keeps every row pending
// (one is tried, the others wait without using up attempts) and, once the
// relay is back, delivers each exactly once.
func TestWorkerRelayDown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		addr := freeAddr(t)
		// One connection: the first failure stops the pass before another
		// row is tried (with more, as many rows as connections may be
		// tried at once).
		f.cfg.Outgoing.Relay, f.cfg.Outgoing.Connections = "smtp://"+addr, 1
		snd, err := NewSender(f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer CloseSender(snd)
		w := New(st, f.cfg, snd, nil)
		w.base = 300 * time.Millisecond
		recipients := []string{"bob@example.com", "carol@example.com", "dave@example.net", "erin@example.net"}
		rows := f.enqueue(t, recipients...)

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		waitFor(t, "a failed attempt", func() bool {
			for _, r := range rows {
				if o := outboxRow(t, st, r.ID); o.Attempts > 0 {
					return o.Status == store.OutboxPending && o.LastError != ""
				}
			}
			return false
		})
		tried := 0
		for _, r := range rows {
			o := outboxRow(t, st, r.ID)
			if o.Status != store.OutboxPending {
				t.Errorf("row %d: status %s while the relay is down, want pending", r.ID, o.Status)
			}
			if o.Attempts > 0 {
				tried++
			}
		}
		if tried != 1 {
			t.Errorf("%d rows used an attempt on the first pass, want 1 (the others wait for the relay)", tried)
		}

		s := startSinkOn(t, addr)
		waitFor(t, "every row sent", func() bool {
			for _, r := range rows {
				if outboxRow(t, st, r.ID).Status != store.OutboxSent {
					return false
				}
			}
			return true
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, rc := range recipients {
			if n := s.count(rc); n != 1 {
				t.Errorf("%s got %d mails, want 1", rc, n)
			}
		}
	})
}

// TestWorkerStopsMidway: cancelling Run while mails are being sent
// finishes those, records them, and puts the rest back due at once; a
// second worker then sends the rest, and nobody gets a mail twice.
func TestWorkerStopsMidway(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		gate := make(chan struct{})
		arrived := make(chan struct{}, 100)
		s := newSink(t, "")
		s.hold = func(m sunk) {
			arrived <- struct{}{}
			<-gate
		}
		f.cfg.Outgoing.Relay, f.cfg.Outgoing.Connections = "smtp://"+s.addr, 2
		var recipients []string
		for i := range 20 {
			recipients = append(recipients, "r"+string(rune('a'+i))+"@example.net")
		}
		rows := f.enqueue(t, recipients...)
		snd, _ := NewSender(f.cfg)
		defer CloseSender(snd)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- New(st, f.cfg, snd, nil).Run(ctx) }()
		<-arrived
		<-arrived // two mails in flight
		cancel()
		time.Sleep(100 * time.Millisecond)
		close(gate) // the two finish; later mails pass at once
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		sent := 0
		for _, r := range rows {
			o := outboxRow(t, st, r.ID)
			if o.Status == store.OutboxSent {
				sent++
			} else if o.Attempts != 0 || o.NextAttempt.After(time.Now()) {
				t.Errorf("row %d not sent: attempts %d, due %v; want it put back untried, due now", r.ID, o.Attempts, o.NextAttempt)
			}
		}
		if sent != 2 {
			t.Errorf("%d rows sent after the stop, want the 2 in flight", sent)
		}
		if n, err := New(st, f.cfg, snd, nil).Flush(t.Context()); err != nil || n != len(rows)-2 {
			t.Errorf("Flush after the stop = %d, %v; want %d", n, err, len(rows)-2)
		}
		for _, rc := range recipients {
			if n := s.count(rc); n != 1 {
				t.Errorf("%s got %d mails, want 1", rc, n)
			}
		}
	})
}

// TestWorkerListen (PostgreSQL): a row committed by someone else (no
// Kick) wakes Run through LISTEN/NOTIFY, and after the listening
// connection is killed Run looks again once it has reconnected, finding
// a row committed while it was deaf.
func TestWorkerListen(t *testing.T) {
	o := storetest.Options(t, store.DriverPostgres)
	st := storetest.Open(t, o)
	f := newFixture(t, st)
	f.cfg.Store.Driver, f.cfg.Store.DSN = store.DriverPostgres, o.DSN
	snd := newTestSender()
	snd.sent = make(chan string, 10)
	w := New(st, f.cfg, snd, nil)
	w.poll = time.Hour // only LISTEN can wake it
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	db, err := sql.Open("postgres", o.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	listening := func() int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, store.ListenApplicationName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, "the worker to LISTEN", func() bool { return listening() > 0 })
	time.Sleep(100 * time.Millisecond) // let Run's first pass end and sleep

	f.enqueue(t, "bob@example.com")
	select {
	case to := <-snd.sent:
		if to != "bob@example.com" {
			t.Errorf("sent to %s", to)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a committed row did not wake the worker through NOTIFY")
	}

	// Kill the listening connection, then commit while it is down.
	if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, store.ListenApplicationName); err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, "carol@example.com")
	select {
	case to := <-snd.sent:
		if to != "carol@example.com" {
			t.Errorf("sent to %s", to)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("after a reconnection the worker did not look for rows committed meanwhile")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestUnsubscribe: the https token takes its user off its issue's nosy
// list, once; a bounce token or a made-up one is refused.
func TestUnsubscribe(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		for _, u := range []*store.User{f.alice, f.bob} {
			if _, err := st.AddNosy(t.Context(), f.issue.ID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		m := f.render(t, f.row(t, f.first, "bob@example.com", NotifyPayload{}))
		p := parseMail(t, m.Data)
		lu := p.get("List-Unsubscribe")
		i := strings.Index(lu, "/unsubscribe/")
		if i < 0 {
			t.Fatalf("List-Unsubscribe %q has no https link", lu)
		}
		tok := strings.TrimSuffix(lu[i+len("/unsubscribe/"):], ">")
		uid, iid, removed, err := Unsubscribe(t.Context(), st, tok)
		if err != nil || uid != f.bob.ID || iid != f.issue.ID || !removed {
			t.Fatalf("Unsubscribe = %d, %d, %v, %v; want bob, the issue, removed", uid, iid, removed, err)
		}
		if _, _, removed, err := Unsubscribe(t.Context(), st, tok); err != nil || removed {
			t.Errorf("second Unsubscribe: removed %v, %v; want false, nil", removed, err)
		}
		nosy, _ := st.Nosy(t.Context(), f.issue.ID)
		if len(nosy) != 1 || nosy[0].ID != f.alice.ID {
			t.Errorf("nosy after unsubscribe = %v, want alice alone", nosy)
		}
		bounceTok := strings.TrimPrefix(strings.TrimSuffix(m.EnvelopeFrom, "@example.org"), "issues+bounce-")
		for _, bad := range []string{bounceTok, "nosuchtoken"} {
			if _, _, _, err := Unsubscribe(t.Context(), st, bad); !errors.Is(err, ErrBadToken) {
				t.Errorf("Unsubscribe(%q) = %v, want ErrBadToken", bad, err)
			}
		}
	})
}

// startSinkOn starts a plain sink on addr (retrying while the port is
// released).
func startSinkOn(t *testing.T, addr string) *sink {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return startSink(t, l, "")
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
