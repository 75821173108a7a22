package poll_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testdovecot"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/mailgw/poll"
	"github.com/trackerd/trackerd/store"
)

// TestDovecot: against a real Dovecot, over IMAP and POP3, plain, with
// STARTTLS/STLS and with implicit TLS (a self-signed certificate the
// poller verifies), and POP3 with APOP: 50 mails (10 for the TLS and APOP
// variants) filed by one pass and
// the mailbox emptied (moved, flagged); a second pass files nothing; the
// same mails put back are not filed twice.
func TestDovecot(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		d := testdovecot.Start(t, testdovecot.Options{})
		e := newEnv(t, st)
		verified := poll.Options{RootCAs: d.Roots, BatchSize: 16}
		// 50 mails for each after-action of each protocol; the TLS and
		// APOP variants differ only in the connection, and take 10.
		for i, v := range []struct {
			name, url, after string
			n                int
		}{
			{name: "imap", url: "imap://tracker@" + d.IMAP, n: 50},
			{name: "imap-move", url: "imap://tracker@" + d.IMAP, after: "move:Processed", n: 50},
			{name: "imap-flag", url: "imap://tracker@" + d.IMAP, after: "flag", n: 50},
			{name: "imap-starttls", url: "imap+starttls://tracker@" + d.IMAP + "/INBOX", n: 10},
			{name: "imaps", url: "imaps://tracker@" + d.IMAPS, n: 10},
			{name: "pop3", url: "pop3://tracker@" + d.POP3, n: 50},
			{name: "pop3-stls", url: "pop3+starttls://tracker@" + d.POP3, n: 10},
			{name: "pop3s", url: "pop3s://tracker@" + d.POP3S, n: 10},
			{name: "pop3-apop", url: "pop3://tracker;auth=+APOP@" + d.POP3, n: 10},
		} {
			// Each variant starts from an empty INBOX (the flag variant's
			// mails are cleared after it).
			mails := archive(v.n, uint64(100+i))
			d.Append(t, "tracker", "INBOX", mails...)
			after := v.after
			if after == "" {
				after = "delete"
			}
			p := e.poller(t, config.Poll{Name: v.name, URL: v.url, Password: "secret", After: after}, verified)
			before, _ := e.counts(t)
			got := pass(t, p)
			if got.Fetched != v.n || got.Filed != v.n || got.Acknowledged != v.n {
				t.Fatalf("%s: first pass %+v, want %d fetched, filed, acknowledged", v.name, got, v.n)
			}
			e.wantCounts(t, before+v.n, before+v.n)
			if got := pass(t, p); got.Fetched != 0 {
				t.Fatalf("%s: second pass %+v, want nothing fetched", v.name, got)
			}
			d.Append(t, "tracker", "INBOX", mails[:5]...)
			got = pass(t, p)
			if got.Fetched != 5 || got.Duplicates != 5 || got.Filed != 0 {
				t.Fatalf("%s: pass over mails put back %+v, want 5 fetched duplicates, none filed", v.name, got)
			}
			e.wantCounts(t, before+v.n, before+v.n)
			total, seen := d.Count(t, "tracker", "INBOX")
			switch after {
			case "flag":
				if total != v.n+5 || seen != v.n+5 {
					t.Fatalf("%s: INBOX holds %d mails, %d seen; want %d, all seen", v.name, total, seen, v.n+5)
				}
				d.Clear(t, "tracker", "INBOX")
			case "move:Processed":
				if moved, _ := d.Count(t, "tracker", "Processed"); total != 0 || moved != v.n+5 {
					t.Fatalf("%s: INBOX holds %d mails, Processed %d; want 0 and %d", v.name, total, moved, v.n+5)
				}
			default:
				if total != 0 {
					t.Fatalf("%s: INBOX holds %d mails, want 0", v.name, total)
				}
			}
		}
	})
}

// TestDovecotMbox: POP3 and IMAP over Dovecot's mbox storage.
func TestDovecotMbox(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		d := testdovecot.Start(t, testdovecot.Options{Mbox: true})
		e := newEnv(t, st)
		d.Append(t, "tracker", "INBOX", archive(20, 200)...)
		p := e.poller(t, config.Poll{Name: "mbox-pop3", URL: "pop3://tracker@" + d.POP3, Password: "secret"}, poll.Options{})
		if got := pass(t, p); got.Filed != 20 {
			t.Fatalf("POP3 over mbox: %+v, want 20 filed", got)
		}
		d.Append(t, "tracker", "INBOX", archive(30, 200)[20:]...)
		p = e.poller(t, config.Poll{Name: "mbox-imap", URL: "imap://tracker@" + d.IMAP, Password: "secret"}, poll.Options{})
		if got := pass(t, p); got.Filed != 10 {
			t.Fatalf("IMAP over mbox: %+v, want 10 filed", got)
		}
		e.wantCounts(t, 30, 30)
		if total, _ := d.Count(t, "tracker", "INBOX"); total != 0 {
			t.Fatalf("INBOX holds %d mails, want 0", total)
		}
	})
}

// TestCutBetweenCommitAndAck: the connection dies after the commit and
// before the after-action reaches Dovecot (a proxy holds UID STORE or
// DELE, then cuts everything, as a crash or a network failure would):
// the next pass files nothing twice and empties the mailbox.
func TestCutBetweenCommitAndAck(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		d := testdovecot.Start(t, testdovecot.Options{})
		e := newEnv(t, st)
		for i, v := range []struct {
			proto, target string
			hold          func(string) bool
		}{
			{"imap", d.IMAP, func(l string) bool { return strings.Contains(strings.ToUpper(l), " UID STORE ") }},
			{"pop3", d.POP3, func(l string) bool { return strings.HasPrefix(strings.ToUpper(l), "DELE ") }},
		} {
			proxy := testdovecot.NewProxy(t, v.target)
			proxy.Hold(v.hold)
			d.Append(t, "tracker", "INBOX", archive(20, uint64(300+i))...)
			p := e.poller(t, config.Poll{Name: v.proto, URL: v.proto + "://tracker@" + proxy.Addr, Password: "secret"}, poll.Options{})
			before, _ := e.counts(t)
			errc := make(chan error, 1)
			go func() { _, err := p.Pass(t.Context()); errc <- err }()
			select {
			case line := <-proxy.Held:
				t.Logf("%s: held %q", v.proto, strings.TrimSpace(line))
			case err := <-errc:
				t.Fatalf("%s: Pass ended before its after-action: %v", v.proto, err)
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: no after-action within 30s", v.proto)
			}
			e.wantCounts(t, before+20, before+20) // committed before the ack
			proxy.CutAll()
			if err := <-errc; err == nil {
				t.Fatalf("%s: Pass whose connection was cut returned no error", v.proto)
			}
			if total, _ := d.Count(t, "tracker", "INBOX"); total != 20 {
				t.Fatalf("%s: INBOX holds %d mails after the cut, want 20", v.proto, total)
			}
			proxy.Hold(nil)
			got := pass(t, p)
			if got.Filed != 0 || got.Acknowledged != 20 {
				t.Fatalf("%s: pass after the cut %+v, want nothing filed and 20 acknowledged", v.proto, got)
			}
			e.wantCounts(t, before+20, before+20)
			if total, _ := d.Count(t, "tracker", "INBOX"); total != 0 {
				t.Fatalf("%s: INBOX holds %d mails, want 0", v.proto, total)
			}
		}
	})
}

// TestDovecotErrors: a wrong password, an untrusted certificate and an
// unreachable server fail the pass with an error that says which.
func TestDovecotErrors(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		d := testdovecot.Start(t, testdovecot.Options{})
		e := newEnv(t, st)
		closed := testenv.FreePort(t)
		for _, v := range []struct{ name, url, password, want string }{
			{"imap-password", "imap://tracker@" + d.IMAP, "wrong", "log in as tracker"},
			{"pop3-password", "pop3://tracker@" + d.POP3, "wrong", "log in as tracker"},
			{"imaps-untrusted", "imaps://tracker@" + d.IMAPS, "secret", "certificate"},
			{"pop3s-untrusted", "pop3s://tracker@" + d.POP3S, "secret", "certificate"},
			{"imap-stls-untrusted", "imap+starttls://tracker@" + d.IMAP, "secret", "certificate"},
			{"imap-unreachable", "imap://tracker@" + closed, "secret", "connection refused"},
			{"pop3-unreachable", "pop3://tracker@" + closed, "secret", "connection refused"},
		} {
			p := e.poller(t, config.Poll{Name: v.name, URL: v.url, Password: v.password}, poll.Options{Timeout: 5 * time.Second})
			if _, err := p.Pass(t.Context()); err == nil || !strings.Contains(err.Error(), v.want) {
				t.Errorf("%s: Pass: %v, want an error containing %q", v.name, err, v.want)
			}
		}
	})
}
