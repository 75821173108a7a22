package main

// End-to-end tests of sender authentication and the abuse controls
// (issue 8), through the built binary on SQLite and PostgreSQL. The
// binary resolves DNS through mailgw.dns_server, which names a DNS
// server this test runs on a fake zone (package dnstest).

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/mailgw/auth/dnstest"
	"github.com/trackerd/trackerd/store"
)

// fakeDNS serves example.org's records: SPF allowing only 192.0.2.10
// (not the test's 127.0.0.1), DMARC p=reject, and a DKIM key whose
// private half signs alice's genuine mail.
func fakeDNS(t *testing.T) (addr string, sign func(raw string) string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dnstest.Serve(&dnstest.Zone{TXT: map[string][]string{
		"example.org":                {"v=spf1 ip4:192.0.2.10 -all"},
		"_dmarc.example.org":         {"v=DMARC1; p=reject"},
		"sel._domainkey.example.org": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr, func(raw string) string {
		var b bytes.Buffer
		if err := dkim.Sign(&b, strings.NewReader(raw), &dkim.SignOptions{Domain: "example.org", Selector: "sel", Signer: priv}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
}

// sibling is a fresh environment on the same driver as e.
func (e *cliEnv) sibling(t *testing.T) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	s := &cliEnv{dir: dir, config: filepath.Join(dir, "trackerd.toml"), opts: e.opts}
	if e.opts.Driver == "postgres" {
		s.opts.DSN = freshDatabase(t, storetest.PostgresDSN(t))
	} else {
		s.opts.DSN = filepath.Join(dir, "trackerd-data", "trackerd.db")
	}
	return s
}

// TestAuthForgedFrom: with trust = "authenticated", a mail forging
// alice's From (no signature, sent from an address her SPF does not
// allow, her domain publishing DMARC p=reject) is filed as a comment and
// changes no property; alice's signed mail does. With trust = "any" the
// very same forgery changes the issue.
func TestAuthForgedFrom(t *testing.T) {
	dns, sign := fakeDNS(t)
	opening := sign(msg("Alice <alice@example.org>", "Printer on fire [priority=urgent]", "open@example.org", "It burns."))
	forgery := func(id int64) string {
		return msg("Alice <alice@example.org>", fmt.Sprintf("Re: [issue%d] Printer on fire [status=resolved]", id), "forged@attacker.test",
			"/priority wish\n\nNever mind, fixed.")
	}
	forEachDriver(t, func(t *testing.T, base *cliEnv) {
		for _, trust := range []string{"authenticated", "any"} {
			t.Run(trust, func(t *testing.T) {
				e := base.sibling(t)
				addr := smtpConfig(t, e, fmt.Sprintf("[mailgw]\ntrust = %q\ndns_server = %q\n", trust, dns))
				startSMTP(t, e, addr)
				c := dialSMTP(t, addr)
				if err := c.Hello("client.example.org"); err != nil {
					t.Fatal(err)
				}
				reply, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, opening)
				if err != nil {
					t.Fatalf("alice's signed mail: %v", err)
				}
				var id int64
				if _, err := fmt.Sscanf(reply, "2.0.0 filed as issue %d", &id); err != nil {
					t.Fatalf("reply %q", reply)
				}
				if d := e.issue(t, id); d.Priority != "urgent" {
					t.Fatalf("alice's signed mail set priority %q, want urgent", d.Priority)
				}
				if _, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, forgery(id)); err != nil {
					t.Fatalf("forgery: %v", err)
				}
				d := e.issue(t, id)
				if len(d.Messages) != 2 || !strings.Contains(d.Messages[1].Content, "Never mind") {
					t.Fatalf("the forgery is not filed as a comment: %+v", d.Messages)
				}
				var inbound []struct {
					ID     int64  `json:"id"`
					Status string `json:"status"`
					Reason string `json:"reason"`
				}
				decodeFields(t, e.mustRun(t, "inbound", "list", "-json", "-limit", "1"), &inbound)
				raw := e.mustRun(t, "inbound", "show", fmt.Sprint(inbound[0].ID), "-raw")
				switch trust {
				case "authenticated":
					if d.Status != "unread" || d.Priority != "urgent" {
						t.Errorf("forged From changed the issue: status %s, priority %s", d.Status, d.Priority)
					}
					if !strings.HasPrefix(raw, "Authentication-Results: localhost;\r\n\tspf=fail smtp.mailfrom=example.org;\r\n\tdkim=none;\r\n\tdmarc=fail header.from=example.org policy.dmarc=reject\r\n") {
						t.Errorf("the archived forgery does not start with trackerd's verdict:\n%s", raw)
					}
					if !strings.Contains(inbound[0].Reason, "not authenticated") {
						t.Errorf("inbound reason %q", inbound[0].Reason)
					}
					replies := 0
					for _, r := range e.outbox(t) {
						if r.Recipient == "alice@example.org" && r.IssueID == nil {
							replies++
						}
					}
					if replies != 1 {
						t.Errorf("%d replies to alice, want one saying why nothing changed", replies)
					}
				case "any":
					if d.Status != "resolved" || d.Priority != "wish" {
						t.Errorf("trust=any: the forgery did not change the issue: status %s, priority %s", d.Status, d.Priority)
					}
					if !strings.HasPrefix(raw, "Authentication-Results: localhost; none\r\n") {
						t.Errorf("the archived mail does not start with trackerd's (empty) verdict:\n%s", raw)
					}
				}
			})
		}
	})
}

// decodeFields decodes JSON into v, ignoring fields v does not name.
func decodeFields(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

// TestAuthLimits: the sixth new issue in an hour from one sender is
// quarantined; fifty vacation replies without Auto-Submitted file
// nothing past the loop breaker; `inbound list` shows the quarantined
// mail with its reason and `inbound reprocess` releases it.
func TestAuthLimits(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		addr := smtpConfig(t, e, "[mailgw]\nmax_new_issues_per_sender_hour = 5\n")
		startSMTP(t, e, addr)

		// Rate limit, through deliver.
		for i := 1; i <= 6; i++ {
			out := e.mustDeliver(t, msg("Flood <flood@example.org>", fmt.Sprintf("New thing %d", i), fmt.Sprintf("new%d@example.org", i), "x"))
			want := "filed "
			if i == 6 {
				want = "quarantined "
			}
			if !strings.HasPrefix(out, want) {
				t.Fatalf("new issue %d: %q, want %q", i, out, want)
			}
		}
		list := e.mustRun(t, "inbound", "list", "-status", "quarantined")
		if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 1 || !strings.Contains(list, "rate limit: flood@example.org opened 5 issues in the last hour") {
			t.Fatalf("inbound list -status quarantined:\n%s", list)
		}
		qid, _, _ := strings.Cut(list, "\t")
		out := e.mustRun(t, "inbound", "reprocess", qid)
		if !strings.Contains(out, "\tfiled\tissue=6") {
			t.Fatalf("inbound reprocess %s: %q", qid, out)
		}
		if l := e.issues(t); len(l) != 6 {
			t.Fatalf("%d issues after the release, want 6", len(l))
		}

		// Loop breaker, through the listener: an auto-responder without
		// Auto-Submitted answers fifty times.
		c := dialSMTP(t, addr)
		if err := c.Hello("client.example.org"); err != nil {
			t.Fatal(err)
		}
		held := 0
		for i := range 50 {
			reply, err := testmail.Send(c, "away@example.net", []string{"tracker@localhost"},
				msg("Away <away@example.net>", "Re: [issue1] New thing 1", fmt.Sprintf("away%d@example.net", i),
					fmt.Sprintf("I am out of the office until Monday. (%d)", i)))
			if err != nil {
				t.Fatalf("vacation reply %d: %v", i, err)
			}
			if strings.Contains(reply, "held for review: loop breaker") {
				held++
			}
		}
		d := e.issue(t, 1)
		away := 0
		for _, m := range d.Messages {
			if strings.Contains(m.Content, "out of the office") {
				away++
			}
		}
		if away != 10 || held != 40 {
			t.Errorf("vacation replies: %d filed, %d held; want 10 (mailgw.loop_max_mails) and 40", away, held)
		}
		list = e.mustRun(t, "inbound", "list", "-status", store.InboundQuarantined)
		if n := strings.Count(list, "loop breaker: away@example.net sent 10 messages to issue 1"); n != 40 {
			t.Errorf("inbound list shows %d loop-breaker rows, want 40:\n%s", n, list)
		}
		qid, _, _ = strings.Cut(list, "\t")
		if out := e.mustRun(t, "inbound", "reprocess", qid); !strings.Contains(out, "\tfiled\tissue=1") {
			t.Errorf("releasing %s: %q", qid, out)
		}
		if n := len(e.issue(t, 1).Messages); n != len(d.Messages)+1 {
			t.Errorf("issue 1 has %d messages after the release, want %d", n, len(d.Messages)+1)
		}
	})
}
