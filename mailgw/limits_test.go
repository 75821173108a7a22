package mailgw

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestNewIssueRate: the sender's new issue past
// max_new_issues_per_sender_hour is quarantined, whatever the trust; the
// next hour it may open issues again; Reprocess releases the quarantined
// mail.
func TestNewIssueRate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, func(c *config.Config) { c.MailGW.MaxNewIssuesPerSenderHour = 5 })
		start := time.Now()
		g.now = func() time.Time { return start }
		for i := 1; i <= 5; i++ {
			if r := mustDeliver(t, g, testMail("spam@example.org", "tracker@localhost", fmt.Sprintf("Issue %d", i), fmt.Sprintf("n%d@x", i), "x")); r.Status != store.InboundFiled {
				t.Fatalf("issue %d: %+v", i, r)
			}
		}
		// Another sender is not limited by this one.
		if r := mustDeliver(t, g, testMail("other@example.org", "tracker@localhost", "Mine", "o1@x", "x")); r.Status != store.InboundFiled {
			t.Fatalf("other sender: %+v", r)
		}
		r := mustDeliver(t, g, testMail("spam@example.org", "tracker@localhost", "Issue 6", "n6@x", "x"))
		if r.Status != store.InboundQuarantined || r.IssueID != 0 || r.Replied {
			t.Fatalf("sixth new issue: %+v, want quarantined, unanswered", r)
		}
		// A reply to an existing issue is not a new issue.
		if r := mustDeliver(t, g, testMail("spam@example.org", "tracker@localhost", "Re: [issue1] Issue 1", "n7@x", "more")); r.Status != store.InboundFiled {
			t.Fatalf("reply within the limit: %+v", r)
		}
		rows, err := st.ListInbound(t.Context(), store.InboundFilter{Status: store.InboundQuarantined})
		if err != nil || len(rows) != 1 || rows[0].ID != r.InboundID {
			t.Fatalf("quarantined list: %+v %v", rows, err)
		}
		rel, err := g.Reprocess(t.Context(), rows[0].ID)
		if err != nil || rel.Status != store.InboundFiled || rel.IssueID == 0 {
			t.Fatalf("release: %+v %v", rel, err)
		}
		// An hour later the sender is welcome again.
		g.now = func() time.Time { return start.Add(61 * time.Minute) }
		if r := mustDeliver(t, g, testMail("spam@example.org", "tracker@localhost", "Issue 8", "n8@x", "x")); r.Status != store.InboundFiled {
			t.Fatalf("an hour later: %+v", r)
		}
	})
}

// TestNewIssueRateOff: max_new_issues_per_sender_hour = 0 is no limit;
// and a limit is still enforced when the sender opened more issues than
// it before it was lowered (the count stops at the limit, not below it).
func TestNewIssueRateOff(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, func(c *config.Config) { c.MailGW.MaxNewIssuesPerSenderHour = 0 })
		for i := 1; i <= 25; i++ {
			if r := mustDeliver(t, g, testMail("bot@example.org", "tracker@localhost", fmt.Sprintf("Alert %d", i), fmt.Sprintf("a%d@x", i), "x")); r.Status != store.InboundFiled {
				t.Fatalf("issue %d with no limit: %+v", i, r)
			}
		}
		g.cfg.MailGW.MaxNewIssuesPerSenderHour = 3
		r := mustDeliver(t, g, testMail("bot@example.org", "tracker@localhost", "Alert 26", "a26@x", "x"))
		if r.Status != store.InboundQuarantined {
			t.Fatalf("26th issue with the limit lowered to 3: %+v, want quarantined", r)
		}
		in, err := st.Inbound(t.Context(), r.InboundID)
		if err != nil || !strings.Contains(in.Reason, "opened 3 issues") {
			t.Fatalf("reason %q (%v), want the count stopped at the limit", in.Reason, err)
		}
	})
}

// TestLoopBreaker: an auto-responder with no Auto-Submitted header
// answering every notification files loop_max_mails messages on the
// issue and nothing more within loop_window; the quarantined mails can
// be released.
func TestLoopBreaker(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, func(c *config.Config) { c.MailGW.LoopMaxMails = 3 })
		start := time.Now()
		g.now = func() time.Time { return start }
		r := mustDeliver(t, g, testMail("alice@example.org", "tracker@localhost", "Help", "h1@x", "help"))
		id := r.IssueID
		statuses := map[string]int{}
		for i := range 20 {
			m := testMail("vacation@example.net", "tracker@localhost", fmt.Sprintf("Re: [issue%d] Help", id), fmt.Sprintf("v%d@x", i),
				fmt.Sprintf("I am away until Monday (%d).", i))
			statuses[mustDeliver(t, g, m).Status]++
		}
		if statuses[store.InboundFiled] != 3 || statuses[store.InboundQuarantined] != 17 {
			t.Fatalf("statuses = %v, want 3 filed, 17 quarantined", statuses)
		}
		msgs, err := st.Messages(t.Context(), id)
		if err != nil || len(msgs) != 4 {
			t.Fatalf("messages on the issue: %d %v, want 4", len(msgs), err)
		}
		// Alice is not limited by the responder.
		if r := mustDeliver(t, g, testMail("alice@example.org", "tracker@localhost", fmt.Sprintf("Re: [issue%d] Help", id), "h2@x", "still")); r.Status != store.InboundFiled {
			t.Fatalf("alice: %+v", r)
		}
		// After the window the breaker lets mail through again.
		g.now = func() time.Time { return start.Add(11 * time.Minute) }
		m := testMail("vacation@example.net", "tracker@localhost", fmt.Sprintf("Re: [issue%d] Help", id), "later@x", "Back soon.")
		if r := mustDeliver(t, g, m); r.Status != store.InboundFiled {
			t.Fatalf("after the window: %+v", r)
		}
		rows, err := st.ListInbound(t.Context(), store.InboundFilter{Status: store.InboundQuarantined, Limit: 1})
		if err != nil || len(rows) != 1 {
			t.Fatal(err)
		}
		if r, err := g.Reprocess(t.Context(), rows[0].ID); err != nil || r.Status != store.InboundFiled {
			t.Fatalf("release: %+v %v", r, err)
		}
	})
}

func TestConnRate(t *testing.T) {
	r := newConnRate(3)
	now := time.Now()
	for i := range 3 {
		if !r.allow("192.0.2.1", now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("connection %d refused", i+1)
		}
	}
	if r.allow("192.0.2.1", now.Add(10*time.Second)) {
		t.Fatal("fourth connection within a minute allowed")
	}
	if !r.allow("192.0.2.2", now.Add(10*time.Second)) {
		t.Fatal("another address refused")
	}
	// At 61s the connections of 0s and 1s have left the window.
	for i := range 2 {
		if !r.allow("192.0.2.1", now.Add(61*time.Second)) {
			t.Fatalf("connection %d a minute later refused", i+1)
		}
	}
	if r.allow("192.0.2.1", now.Add(61*time.Second)) {
		t.Fatal("the window slid too far")
	}
	r.sweep(now.Add(10 * time.Minute))
	if len(r.seen) != 0 {
		t.Errorf("sweep kept %d addresses", len(r.seen))
	}
}

// TestListenerConnRate: past smtp.max_connections_per_ip_minute a new
// connection is answered 421 in place of the greeting.
func TestListenerConnRate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) { c.SMTP.MaxConnectionsPerIPMinute = 3 })
		for i := range 3 {
			c, err := smtp.Dial(tl.addr)
			if err != nil {
				t.Fatalf("connection %d: %v", i+1, err)
			}
			if err := c.Hello("client.example.org"); err != nil {
				t.Fatalf("connection %d: EHLO: %v", i+1, err)
			}
			c.Close()
		}
		c, err := smtp.Dial(tl.addr)
		if err == nil {
			err = c.Hello("client.example.org")
			c.Close()
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 421 {
			t.Fatalf("fourth connection: %v, want 421", err)
		}
	})
}
