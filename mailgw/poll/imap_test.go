package poll_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testdovecot"
	"github.com/trackerd/trackerd/mailgw/poll"
	"github.com/trackerd/trackerd/store"
)

// TestIMAPMem: against go-imap's in-memory server, with and without
// UIDPLUS/MOVE (IMAP4rev1 only: EXPUNGE and the COPY fallback), each
// after-action: 50 mails filed by one pass and the mailbox emptied (or
// moved, or flagged); a second pass files nothing; the same mails put
// back are not filed twice.
func TestIMAPMem(t *testing.T) {
	mails := archive(50, 1)
	for _, rev := range []string{"rev2", "rev1"} {
		for _, after := range []string{"delete", "move:Processed", "flag"} {
			t.Run(rev+"/"+after, func(t *testing.T) {
				storetest.ForEach(t, func(t *testing.T, st *store.Store) {
					var caps imap.CapSet
					if rev == "rev1" {
						caps = imap.CapSet{imap.CapIMAP4rev1: {}}
					}
					srv := startMem(t, caps)
					c := srv.client(t)
					testdovecot.Append(t, c, "INBOX", mails...)
					e := newEnv(t, st)
					p := e.poller(t, config.Poll{URL: srv.url("imap", srv.Addr, ""), Password: memPassword, After: after}, poll.Options{BatchSize: 20})

					got := pass(t, p)
					if got.Fetched != 50 || got.Filed != 50 || got.Acknowledged != 50 {
						t.Fatalf("first pass: %+v, want 50 fetched, filed and acknowledged", got)
					}
					e.wantCounts(t, 50, 50)
					wantMailbox(t, c, after, 50)

					if got := pass(t, p); got.Fetched != 0 {
						t.Fatalf("second pass: %+v, want nothing fetched", got)
					}
					e.wantCounts(t, 50, 50)

					// The same mails put back: fetched, known, acknowledged.
					testdovecot.Append(t, c, "INBOX", mails[:5]...)
					got = pass(t, p)
					if got.Fetched != 5 || got.Duplicates != 5 || got.Filed != 0 || got.Acknowledged != 5 {
						t.Fatalf("pass over mails put back: %+v, want 5 fetched, duplicates and acknowledged, none filed", got)
					}
					e.wantCounts(t, 50, 50)
					wantMailbox(t, c, after, 55)
				})
			})
		}
	}
}

// wantMailbox checks INBOX after n mails were acknowledged with after.
func wantMailbox(t *testing.T, cl *imapclient.Client, after string, n int) {
	t.Helper()
	total, seen := testdovecot.Count(t, cl, "INBOX")
	switch {
	case after == "delete" && total != 0:
		t.Fatalf("after delete INBOX holds %d mails, want 0", total)
	case after == "flag" && (total != n || seen != n):
		t.Fatalf("after flag INBOX holds %d mails, %d seen; want %d, all seen", total, seen, n)
	case strings.HasPrefix(after, "move:"):
		moved, _ := testdovecot.Count(t, cl, strings.TrimPrefix(after, "move:"))
		if total != 0 || moved != n {
			t.Fatalf("after %s INBOX holds %d mails and the target %d; want 0 and %d", after, total, moved, n)
		}
	}
}

// TestAfterActionFails: the after-action fails after the commit (as
// when the process dies there): the mails stay, the cursor stays, and the
// next pass fetches them again, files nothing twice, and acknowledges
// them.
func TestAfterActionFails(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := startMem(t, nil)
		c := srv.client(t)
		testdovecot.Append(t, c, "INBOX", archive(30, 2)...)
		e := newEnv(t, st)
		p := e.poller(t, config.Poll{URL: srv.url("imap", srv.Addr, ""), Password: memPassword}, poll.Options{BatchSize: 10})

		srv.FailAck.Store(true)
		got, err := p.Pass(t.Context())
		if err == nil || !strings.Contains(err.Error(), "after-action") {
			t.Fatalf("Pass with a failing after-action: %+v, %v; want an after-action error", got, err)
		}
		if got.Filed != 10 || got.Acknowledged != 0 {
			t.Fatalf("Pass with a failing after-action: %+v, want the first batch of 10 filed, none acknowledged", got)
		}
		e.wantCounts(t, 10, 10)
		if total, _ := testdovecot.Count(t, c, "INBOX"); total != 30 {
			t.Fatalf("INBOX holds %d mails, want all 30 still there", total)
		}

		srv.FailAck.Store(false)
		got = pass(t, p)
		if got.Fetched != 30 || got.Duplicates != 10 || got.Filed != 20 || got.Acknowledged != 30 {
			t.Fatalf("next pass: %+v, want 30 fetched, 10 duplicates, 20 filed, 30 acknowledged", got)
		}
		e.wantCounts(t, 30, 30)
		if total, _ := testdovecot.Count(t, c, "INBOX"); total != 0 {
			t.Fatalf("INBOX holds %d mails, want 0", total)
		}
	})
}

// TestUIDValidityChange: the mailbox is recreated (a new UIDVALIDITY)
// with the same mails in it: the poller looks at everything again and
// files nothing twice.
func TestUIDValidityChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := startMem(t, nil)
		c := srv.client(t)
		mails := archive(10, 3)
		testdovecot.Append(t, c, "Support", mails...)
		e := newEnv(t, st)
		p := e.poller(t, config.Poll{URL: srv.url("imap", srv.Addr, "Support"), Password: memPassword, After: "flag"}, poll.Options{})
		if got := pass(t, p); got.Filed != 10 {
			t.Fatalf("first pass: %+v, want 10 filed", got)
		}
		if err := c.Delete("Support").Wait(); err != nil {
			t.Fatal(err)
		}
		testdovecot.Append(t, c, "Support", append(mails, archive(12, 3)[10:]...)...)
		got := pass(t, p)
		if got.Fetched != 12 || got.Duplicates != 10 || got.Filed != 2 {
			t.Fatalf("pass after UIDVALIDITY changed: %+v, want 12 fetched, 10 duplicates, 2 filed", got)
		}
		e.wantCounts(t, 12, 12)
		if !strings.Contains(e.log.String(), "UIDVALIDITY changed") {
			t.Errorf("no log line about the UIDVALIDITY change")
		}
	})
}

// TestIMAPTLSAndXOAUTH2: imaps and imap+starttls with a verified
// self-signed certificate; XOAUTH2 with a token file read at each
// connection; a bad token and an unverifiable certificate fail clearly.
func TestIMAPTLSAndXOAUTH2(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := startMem(t, nil)
		c := srv.client(t)
		e := newEnv(t, st)
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte("old-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tok := "new-token"
		srv.Token.Store(&tok)
		withRoots := poll.Options{RootCAs: srv.Roots}
		oauth := e.poller(t, config.Poll{URL: srv.url("imaps", srv.TLS, ""), TokenFile: tokenFile}, withRoots)
		_, err := oauth.Pass(t.Context())
		if err == nil || !strings.Contains(err.Error(), "XOAUTH2") || !strings.Contains(err.Error(), `"status":"401"`) {
			t.Fatalf("Pass with an expired token: %v; want an XOAUTH2 error with the server's detail", err)
		}
		// The token is refreshed by rewriting the file: the next
		// connection reads it.
		if err := os.WriteFile(tokenFile, []byte("new-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		testdovecot.Append(t, c, "INBOX", archive(5, 4)...)
		if got := pass(t, oauth); got.Filed != 5 {
			t.Fatalf("imaps with XOAUTH2: %+v, want 5 filed", got)
		}

		starttls := e.poller(t, config.Poll{Name: "starttls", URL: srv.url("imap+starttls", srv.Addr, ""), Password: memPassword}, withRoots)
		testdovecot.Append(t, c, "INBOX", archive(8, 4)[5:]...)
		if got := pass(t, starttls); got.Filed != 3 {
			t.Fatalf("imap+starttls: %+v, want 3 filed", got)
		}

		untrusted := e.poller(t, config.Poll{Name: "untrusted", URL: srv.url("imaps", srv.TLS, ""), Password: memPassword}, poll.Options{})
		if _, err := untrusted.Pass(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("imaps to an unverifiable certificate: %v, want a certificate error", err)
		}
		skip := e.poller(t, config.Poll{Name: "skip", URL: srv.url("imaps", srv.TLS, ""), Password: memPassword, InsecureSkipVerify: true}, poll.Options{})
		pass(t, skip)

		wrong := e.poller(t, config.Poll{Name: "wrong", URL: srv.url("imap", srv.Addr, ""), Password: "wrong"}, poll.Options{})
		if _, err := wrong.Pass(t.Context()); err == nil || !strings.Contains(err.Error(), "log in as "+memUser) {
			t.Fatalf("wrong password: %v, want a login error naming the user", err)
		}
		e.wantCounts(t, 8, 8)
	})
}

// TestTwoPollersOneMailbox: two processes' pollers (two Lockers) on one
// mailbox, passing over and over while mail arrives: each mail is filed
// once, and a poller finding the mailbox taken reports ErrBusy.
func TestTwoPollersOneMailbox(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		srv := startMem(t, nil)
		c := srv.client(t)
		e1 := newEnv(t, storetest.Open(t, o))
		e2 := newEnv(t, storetest.Open(t, o))
		cfg := config.Poll{URL: srv.url("imap", srv.Addr, ""), Password: memPassword}
		p1 := e1.poller(t, cfg, poll.Options{BatchSize: 7})
		p2 := e2.poller(t, cfg, poll.Options{BatchSize: 7})
		mails := archive(60, 5)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var busy [2]int
		for i, p := range []*poll.Poller{p1, p2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := p.Pass(t.Context()); errors.Is(err, poll.ErrBusy) {
						busy[i]++
					} else if err != nil {
						t.Errorf("Pass: %v", err)
						return
					}
				}
			}()
		}
		for i := 0; i < len(mails); i += 10 {
			testdovecot.Append(t, c, "INBOX", mails[i:i+10]...)
		}
		waitFor(t, 60*time.Second, "all 60 mails filed", func() bool { m, _ := e1.counts(t); return m == 60 })
		close(stop)
		wg.Wait()
		e1.wantCounts(t, 60, 60)
		if total, _ := testdovecot.Count(t, c, "INBOX"); total != 0 {
			t.Errorf("INBOX holds %d mails, want 0", total)
		}
		t.Logf("passes refused as busy: %v", busy)
	})
}
