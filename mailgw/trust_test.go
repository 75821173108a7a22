package mailgw

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/mailgw/auth"
	"github.com/trackerd/trackerd/mailgw/auth/dnstest"
	"github.com/trackerd/trackerd/notify"
	"github.com/trackerd/trackerd/store"
)

func authenticated(c *config.Config) {
	c.MailGW.Trust = "authenticated"
	c.MailGW.TrustedAuthservIDs = []string{"mx.example.net"}
}

// issueState is an issue's status and priority, as "status/priority".
func issueState(t *testing.T, st *store.Store, id int64) string {
	t.Helper()
	is, err := st.Issue(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return is.Status + "/" + is.Priority
}

// TestTrustPolled: mail from a poller is judged by the topmost
// Authentication-Results of a trusted authserv-id; unauthenticated mail
// is filed as a comment, changes nothing, and its sender hears why once a
// day.
func TestTrustPolled(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, authenticated)
		poll := func(m Mail) Mail { m.Source = "imap:support"; return m }
		pass := "Authentication-Results: mx.example.net; dmarc=pass header.from=example.org"
		r := mustDeliver(t, g, poll(testMail("alice@example.org", "tracker@localhost", "Printer on fire [priority=urgent]", "p1@x", "It burns.", pass)))
		if r.Status != store.InboundFiled || issueState(t, st, r.IssueID) != "unread/urgent" {
			t.Fatalf("authenticated new issue: %+v, %s", r, issueState(t, st, r.IssueID))
		}
		id := r.IssueID
		subj := "Re: [issue" + itoa(id) + "] Printer on fire [status=resolved]"

		forgeries := []struct {
			name   string
			header []string
		}{
			{"no header", nil},
			{"untrusted authserv-id", []string{"Authentication-Results: mx.attacker.test; dmarc=pass header.from=example.org"}},
			{"trusted id below an untrusted one", []string{"Authentication-Results: mx.other.test; none", pass}},
			{"trusted dmarc fail", []string{"Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=example.org; dmarc=fail header.from=example.org"}},
			{"trusted pass for another domain", []string{"Authentication-Results: mx.example.net; dmarc=pass header.from=evil.test"}},
		}
		for i, fg := range forgeries {
			m := poll(testMail("alice@example.org", "tracker@localhost", subj, "f"+itoa(int64(i))+"@x", "/priority wish\n\nClosing this.", fg.header...))
			r := mustDeliver(t, g, m)
			if r.Status != store.InboundFiled || r.MsgID == 0 || !strings.Contains(r.Reason, "not authenticated") {
				t.Errorf("%s: %+v, want filed as a comment with a reason", fg.name, r)
			}
			if got := issueState(t, st, id); got != "unread/urgent" {
				t.Errorf("%s: the issue is %s, want unread/urgent (nothing changed, not even reopened)", fg.name, got)
			}
		}
		if got := outboxTo(t, st, notify.KindReply); len(got) != 1 || got[0] != "alice@example.org" {
			t.Errorf("replies = %v, want one to alice@example.org (at most one a day)", got)
		}
		// The next day the sender is told again.
		g.now = func() time.Time { return time.Now().Add(25 * time.Hour) }
		mustDeliver(t, g, poll(testMail("alice@example.org", "tracker@localhost", subj, "next-day@x", "Again.")))
		if got := outboxTo(t, st, notify.KindReply); len(got) != 2 {
			t.Errorf("replies after a day = %v, want two", got)
		}
		// A plain comment changes nothing anyway: no reply.
		mustDeliver(t, g, poll(testMail("alice@example.org", "tracker@localhost", subj[:strings.Index(subj, " [status")], "plain@x", "Just a note.")))
		if got := outboxTo(t, st, notify.KindReply); len(got) != 2 {
			t.Errorf("replies after a plain comment = %v, want still two", got)
		}
		// Unauthenticated (un)subscription changes nothing either.
		m := poll(testMail("bob@example.org", "tracker+"+itoa(id)+"-subscribe@localhost", "subscribe", "sub@x", ""))
		r = mustDeliver(t, g, m)
		if r.Status != store.InboundIgnored || strings.Contains(nosyOf(t, st, id), "bob@") {
			t.Errorf("unauthenticated subscribe: %+v, nosy %s", r, nosyOf(t, st, id))
		}
		// The authenticated mail changes it.
		r = mustDeliver(t, g, poll(testMail("alice@example.org", "tracker@localhost", subj, "ok@x", "/priority wish\n\nClosing.", pass)))
		if got := issueState(t, st, id); r.Status != store.InboundFiled || got != "resolved/wish" {
			t.Errorf("authenticated change: %+v, issue %s, want resolved/wish", r, got)
		}
	})
}

// TestTrustAny: trust = "any" believes the From header (Roundup).
func TestTrustAny(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		r := mustDeliver(t, g, testMail("alice@example.org", "tracker@localhost", "Thing [priority=urgent]", "a1@x", "x"))
		if issueState(t, st, r.IssueID) != "unread/urgent" || r.Reason != "" {
			t.Errorf("trust=any: %+v %s", r, issueState(t, st, r.IssueID))
		}
	})
}

// listenerZone: example.org sends from 127.0.0.1 only through its DKIM
// key (its SPF allows another address) and publishes DMARC p=reject.
func listenerZone(t *testing.T) (*dnstest.Server, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	z := &dnstest.Zone{TXT: map[string][]string{
		"example.org":                {"v=spf1 ip4:192.0.2.10 -all"},
		"_dmarc.example.org":         {"v=DMARC1; p=reject"},
		"sel._domainkey.example.org": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
		"spf.test":                   {"v=spf1 ip4:127.0.0.1 -all"},
	}}
	srv, err := dnstest.Serve(z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, priv
}

// TestTrustListener: the listener checks SPF, DKIM and DMARC itself,
// through mailgw.dns_server, archives its verdict as the first
// Authentication-Results field, and Reprocess reads it back.
func TestTrustListener(t *testing.T) {
	srv, key := listenerZone(t)
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) {
			authenticated(c)
			c.MailGW.DNSServer = srv.Addr
		})
		c := tl.dial(t)
		sign := func(raw string) string {
			var b bytes.Buffer
			if err := dkim.Sign(&b, strings.NewReader(raw), &dkim.SignOptions{Domain: "example.org", Selector: "sel", Signer: key}); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		if _, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, sign(mailText("alice@example.org", "Signed [priority=urgent]", "s1@x", "Signed."))); err != nil {
			t.Fatal(err)
		}
		in := lastInbound(t, st)
		if !bytes.HasPrefix(in.Raw, []byte("Authentication-Results: localhost;")) || !bytes.Contains(in.Raw, []byte("dmarc=pass")) ||
			issueState(t, st, in.IssueID) != "unread/urgent" {
			t.Fatalf("signed mail: %s, archived:\n%s", issueState(t, st, in.IssueID), in.Raw)
		}
		id := in.IssueID

		// A forgery: From example.org, not signed, from an address its SPF
		// does not allow. No Message-ID: the id is the hash of the bytes
		// as sent, not as archived.
		forged := "From: alice@example.org\r\nTo: tracker@localhost\r\nSubject: [issue" + itoa(id) + "] [status=resolved]\r\n\r\n/priority wish\r\nclosed by a forger\r\n"
		if _, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, forged); err != nil {
			t.Fatal(err)
		}
		in = lastInbound(t, st)
		sum := sha256.Sum256([]byte(forged))
		wantID := "<" + hex.EncodeToString(sum[:16]) + "@localhost>"
		if in.Status != store.InboundFiled || !bytes.Contains(in.Raw, []byte("spf=fail")) || !bytes.Contains(in.Raw, []byte("dmarc=fail")) ||
			in.MessageID != wantID || issueState(t, st, id) != "unread/urgent" {
			t.Fatalf("forgery: %+v (want id %s), issue %s, archived:\n%s", in, wantID, issueState(t, st, id), in.Raw)
		}
		// Reprocess reads trackerd's own verdict back: still a forgery, and
		// the same Message-ID.
		res, err := tl.l.gw.Reprocess(t.Context(), in.ID)
		if err != nil || res.Status != store.InboundFiled || res.MessageID != wantID || !res.Duplicate && res.MsgID != in.MsgID {
			t.Errorf("Reprocess of the filed forgery: %+v, %v", res, err)
		}
		// A header claiming a pass, with trackerd's own authserv-id,
		// written by the sender, is below trackerd's: not believed.
		claim := "Authentication-Results: localhost; dmarc=pass header.from=example.org\r\n" + strings.Replace(forged, "closed by", "closed again by", 1)
		if _, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, claim); err != nil {
			t.Fatal(err)
		}
		if got := issueState(t, st, id); got != "unread/urgent" {
			t.Errorf("forgery with a claimed pass changed the issue: %s", got)
		}
		// Envelope and From at a domain whose SPF allows 127.0.0.1, no
		// DMARC record: aligned SPF pass.
		if _, err := testmail.Send(c, "bob@spf.test", []string{"tracker@localhost"}, mailText("bob@spf.test", "[issue"+itoa(id)+"] [priority=bug]", "b1@x", "bob")); err != nil {
			t.Fatal(err)
		}
		if got := issueState(t, st, id); got != "chatting/bug" {
			t.Errorf("aligned SPF pass: issue %s, want chatting/bug", got)
		}
	})
}

func lastInbound(t *testing.T, st *store.Store) *store.Inbound {
	t.Helper()
	rows, err := st.ListInbound(t.Context(), store.InboundFilter{Limit: 1})
	if err != nil || len(rows) == 0 {
		t.Fatalf("ListInbound: %v %d", err, len(rows))
	}
	in, err := st.Inbound(t.Context(), rows[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestTrustAnyListener: with trust = "any" the listener asks no DNS and
// archives "none" as its verdict.
func TestTrustAnyListener(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, nil)
		if tl.l.auth != nil {
			t.Fatal("trust=any: a checker was made")
		}
		c := tl.dial(t)
		if _, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, mailText("alice@example.org", "x [priority=urgent]", "n1@x", "x")); err != nil {
			t.Fatal(err)
		}
		in := lastInbound(t, st)
		if !bytes.HasPrefix(in.Raw, []byte("Authentication-Results: localhost; none\r\n")) || issueState(t, st, in.IssueID) != "unread/urgent" {
			t.Errorf("trust=any: %s, archived:\n%s", issueState(t, st, in.IssueID), in.Raw)
		}
		v, _, ok := auth.ReadOwn(in.Raw, "localhost")
		if !ok || v.Checked {
			t.Errorf("ReadOwn = %+v, %v", v, ok)
		}
	})
}
