package mailgw

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trackerd/trackerd/internal/corpus"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/notify"
	"github.com/trackerd/trackerd/store"
)

// TestBounceCounting feeds the corpus's bounce shapes (Postfix, Sendmail,
// Gmail DSNs, a delay, a DSN delivered twice) to the VERP address of a
// notification: each is archived as ignored with a reason naming what was
// counted, hard bounces mark the user bouncing at outgoing.bounce_limit
// (3), a bouncing user gets no notification, and the user's next mail
// clears the mark.
func TestBounceCounting(t *testing.T) {
	dir := filepath.Join(corpus.Dir(t), "bounces")
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		r := mustDeliver(t, g, testMail("Alice <alice@example.com>", "tracker@localhost", "Printer on fire", "open@example.com",
			"It burns.", "Cc: Bob <bob@example.com>"))
		if r.Status != store.InboundFiled {
			t.Fatalf("opening mail: %+v", r)
		}
		issue := r.IssueID
		bob, err := st.UserByAddress(t.Context(), "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		const tok = "bobsbouncetoken"
		if err := st.CreateBounceToken(t.Context(), tok, bob.ID, issue); err != nil {
			t.Fatal(err)
		}
		verp := "tracker+bounce-" + tok + "@localhost"
		bounce := func(file string, rcpts ...string) Result {
			t.Helper()
			raw, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			r := mustDeliver(t, g, Mail{Raw: raw, Source: "test", NullSender: true, Recipients: rcpts})
			if r.Status != store.InboundIgnored || r.IssueID != 0 {
				t.Fatalf("%s: %+v; want ignored, no issue", file, r)
			}
			return r
		}
		check := func(step string, count int, bouncing bool) {
			t.Helper()
			u, err := st.UserByID(t.Context(), bob.ID)
			if err != nil {
				t.Fatal(err)
			}
			if u.BounceCount != count || u.Bouncing != bouncing {
				t.Errorf("%s: bob has %d hard bounces, bouncing %v; want %d, %v", step, u.BounceCount, u.Bouncing, count, bouncing)
			}
		}
		wantReason := func(r Result, parts ...string) {
			t.Helper()
			for _, p := range parts {
				if !strings.Contains(r.Reason, p) {
					t.Errorf("reason %q does not say %q", r.Reason, p)
				}
			}
		}

		r = bounce("sisimai__bsd__lhost-postfix-01.eml", verp)
		wantReason(r, "bounce: counted a hard 5.1.1 bounce for bob@example.com", "1 hard bounces in a row")
		check("Postfix 5.1.1", 1, false)
		r = bounce("enmime__dsn__testdata__simple_dsn.eml", strings.ToUpper(verp)) // relays may change case
		wantReason(r, "soft 4.0.0")
		check("a delay", 1, false)
		r = bounce("sisimai__bsd__lhost-sendmail-01.eml", verp)
		wantReason(r, "hard 5.1.1", "2 hard bounces")
		check("Sendmail 5.1.1", 2, false)
		r = bounce("sisimai__bsd__rfc3464-01.eml", verp) // the same DSN (same Message-ID) again
		wantReason(r, "was counted before")
		check("the same DSN again", 2, false)
		r = bounce("sisimai__bsd__lhost-gmail-01.eml", verp)
		wantReason(r, "hard 5.1.1", "3 hard bounces", "now marked bouncing")
		check("Gmail 5.1.1", 3, true)

		// Not counted: an unknown token, a DSN to the plain address (anyone
		// can write one), an auto-reply to the bounce address.
		r = bounce("flanker__bounce__office365.eml", "tracker+bounce-nosuchtoken@localhost")
		wantReason(r, "unknown bounce address")
		r = bounce("flanker__bounce__gmail-invalid-address.eml", "tracker@localhost")
		if strings.Contains(r.Reason, "counted") {
			t.Errorf("a DSN to the plain address: reason %q; want it not counted", r.Reason)
		}
		vacation := testMail("Bob <bob@example.com>", verp, "Out of office", "away@example.com", "I am away.", "Auto-Submitted: auto-replied")
		vacation.Recipients = []string{verp}
		r = mustDeliver(t, g, vacation)
		wantReason(r, "auto-reply", "not counted")

		// Without an envelope (a poller), the bounce address in To counts:
		// any mail to it is a bounce, soft unless it says otherwise.
		plain := testMail("Mail Delivery System <MAILER-DAEMON@mx.example.com>", verp, "Undelivered Mail Returned to Sender",
			"dsn1@mx.example.com", "The mail system could not deliver your message.\r\n")
		r = mustDeliver(t, g, plain)
		wantReason(r, "bounce for bob@example.com")
		check("a bounce found by its To", 3, true)
		bs, err := st.Bounces(t.Context(), bob.ID, 0)
		if err != nil || len(bs) != 5 {
			t.Errorf("Bounces(bob) = %d rows, %v; want 5 (3 hard, 2 soft)", len(bs), err)
		}

		// A bouncing member gets no notification.
		r = mustDeliver(t, g, testMail("Alice <alice@example.com>", "tracker+"+itoa(issue)+"@localhost", "Re: Printer on fire", "r1@example.com", "Still burning."))
		if got := outboxTo(t, st, notify.KindNotify); strings.Contains(strings.Join(got, ","), "bob@example.com") {
			t.Errorf("notifications after bob bounced: %v; want none to bob", got)
		}
		// Bob writes: his mail got through, so his address works again.
		r = mustDeliver(t, g, testMail("Bob <BOB@example.com>", "tracker+"+itoa(issue)+"@localhost", "Re: Printer on fire", "r2@example.com", "Back online."))
		if r.Status != store.InboundFiled {
			t.Fatalf("bob's mail: %+v", r)
		}
		check("bob wrote", 0, false)
		mustDeliver(t, g, testMail("Alice <alice@example.com>", "tracker+"+itoa(issue)+"@localhost", "Re: Printer on fire", "r3@example.com", "Out now."))
		if got := outboxTo(t, st, notify.KindNotify); strings.Count(strings.Join(got, ","), "bob@example.com") != 1 {
			t.Errorf("notifications after bob wrote: %v; want bob notified again", got)
		}
		// import -quiet counts nothing.
		q := New(st, g.cfg, g.log, Options{Quiet: true})
		raw, _ := os.ReadFile(filepath.Join(dir, "sisimai__bsd__lhost-exim-01.eml"))
		r = mustDeliver(t, q, Mail{Raw: raw, Source: "import", Recipients: []string{verp}})
		wantReason(r, "not counted")
		check("a quiet import", 0, false)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
