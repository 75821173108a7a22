package mailgw

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/notify"
	"github.com/trackerd/trackerd/store"
)

// newGateway returns a gateway on st with the default config changed by
// edit (nil: defaults).
func newGateway(t *testing.T, st *store.Store, edit func(*config.Config)) *Gateway {
	t.Helper()
	cfg := config.Default()
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return New(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
}

func testMail(from, to, subject, id, body string, headers ...string) Mail {
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n%s\r\n%s", from, to, subject, id,
		strings.Join(append(headers, ""), "\r\n"), body)
	return Mail{Raw: []byte(raw), Source: "test"}
}

func mustDeliver(t *testing.T, g *Gateway, m Mail) Result {
	t.Helper()
	r, err := g.Deliver(t.Context(), m)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return r
}

func nosyOf(t *testing.T, st *store.Store, issueID int64) string {
	t.Helper()
	us, err := st.Nosy(t.Context(), issueID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range us {
		out = append(out, u.Address)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func outboxTo(t *testing.T, st *store.Store, kind string) []string {
	t.Helper()
	rows, err := st.ListOutbox(t.Context(), store.OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r.Kind == kind {
			out = append(out, r.Recipient)
		}
	}
	sort.Strings(out)
	return out
}

// TestBatchSavepoints: in one group commit a rejected mail leaves nothing
// (not even its sender as a user) while the mails around it are filed.
func TestBatchSavepoints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		rs, err := g.DeliverBatch(t.Context(), []Mail{
			testMail("a@example.org", "tracker@localhost", "First", "b1@x", "one"),
			testMail("bad@example.org", "tracker@localhost", "Second [colour=red]", "b2@x", "two"),
			testMail("c@example.org", "tracker@localhost", "Third", "b3@x", "three"),
		})
		if err != nil {
			t.Fatalf("DeliverBatch: %v", err)
		}
		got := []string{rs[0].Status, rs[1].Status, rs[2].Status}
		if strings.Join(got, ",") != "filed,rejected,filed" {
			t.Fatalf("DeliverBatch statuses = %v (%+v)", got, rs)
		}
		if !strings.Contains(rs[1].Reason, `unknown property "colour"`) || !rs[1].Replied {
			t.Errorf("rejected result = %+v, want the reason and a reply", rs[1])
		}
		if _, err := st.UserByAddress(t.Context(), "bad@example.org"); err == nil {
			t.Errorf("the rejected mail's sender was created as a user")
		}
		if to := outboxTo(t, st, "reply"); strings.Join(to, ",") != "bad@example.org" {
			t.Errorf("replies queued to %v, want bad@example.org", to)
		}
		in, err := st.Inbound(t.Context(), rs[1].InboundID)
		if err != nil || in.Status != store.InboundRejected || string(in.Raw) != string(testMail("bad@example.org", "tracker@localhost", "Second [colour=red]", "b2@x", "two").Raw) {
			t.Errorf("archived rejected mail = %+v, %v; want it kept byte for byte as rejected", in, err)
		}
		issues, err := st.ListIssues(t.Context(), store.IssueFilter{})
		if err != nil || len(issues) != 2 {
			t.Errorf("issues = %d, %v; want 2", len(issues), err)
		}
	})
}

// TestConcurrentDuplicates: the same mail delivered by several sessions at
// once is filed exactly once, and every delivery succeeds.
func TestConcurrentDuplicates(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		m := testMail("new.person@example.org", "tracker@localhost", "Once", "dup@x", "only once")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := g.Deliver(context.Background(), m); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Deliver: %v", err)
		}
		msgs := 0
		issues, _ := st.ListIssues(t.Context(), store.IssueFilter{})
		for _, is := range issues {
			ms, _ := st.Messages(t.Context(), is.ID)
			msgs += len(ms)
		}
		if len(issues) != 1 || msgs != 1 {
			t.Errorf("after 8 concurrent deliveries: %d issues, %d messages; want 1 and 1", len(issues), msgs)
		}
	})
}

// TestConcurrentNewSenders runs batches that create the same new senders
// in opposite orders at once. On PostgreSQL that deadlocks or violates a
// unique index now and then; the gateway must run such a batch again, not
// fail it (a poller or the listener would otherwise answer a temporary
// failure for nothing).
func TestConcurrentNewSenders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		const senders, rounds = 8, 6
		want := 0
		for round := range rounds {
			batches := make([][]Mail, 2)
			for b := range batches {
				for i := range senders {
					who := i
					if b == 1 {
						who = senders - 1 - i
					}
					from := fmt.Sprintf("new%d.%d@example.org", round, who)
					batches[b] = append(batches[b], testMail(from, "tracker@localhost",
						fmt.Sprintf("From %d batch %d", who, b), fmt.Sprintf("r%d.b%d.s%d@x", round, b, who), "hello"))
				}
			}
			var wg sync.WaitGroup
			for _, batch := range batches {
				wg.Go(func() {
					if _, err := g.DeliverBatch(context.Background(), batch); err != nil {
						t.Errorf("round %d: DeliverBatch: %v", round, err)
					}
				})
			}
			wg.Wait()
			want += 2 * senders
		}
		issues, err := st.ListIssues(t.Context(), store.IssueFilter{})
		if err != nil {
			t.Fatal(err)
		}
		users, err := st.ListUsers(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(issues) != want || len(users) != rounds*senders {
			t.Errorf("%d issues and %d users; want %d and %d", len(issues), len(users), want, rounds*senders)
		}
	})
}

// TestNosyAndOutbox follows Roundup's nosy rules through the gateway.
func TestNosyAndOutbox(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		// Alice opens an issue with Bob in Cc: both join; nobody is
		// notified (Alice wrote it, Bob got the mail itself).
		r := mustDeliver(t, g, testMail("Alice <alice@example.org>", "tracker@localhost", "Nosy", "n1@x", "hello", "Cc: Bob <bob@example.org>"))
		if got := nosyOf(t, st, r.IssueID); got != "alice@example.org,bob@example.org" {
			t.Errorf("nosy = %s", got)
		}
		if to := outboxTo(t, st, "notify"); len(to) != 0 {
			t.Errorf("first mail notified %v, want nobody", to)
		}
		// Bob replies to the sub-address: Alice is notified, once.
		mustDeliver(t, g, testMail("bob@example.org", fmt.Sprintf("tracker+%d@localhost", r.IssueID), "Re: Nosy", "n2@x", "reply"))
		if to := outboxTo(t, st, "notify"); strings.Join(to, ",") != "alice@example.org" {
			t.Errorf("reply notified %v, want alice", to)
		}
		rows, _ := st.ListOutbox(t.Context(), store.OutboxFilter{})
		row, err := st.Outbox(t.Context(), rows[0].ID) // with its payload
		if err != nil {
			t.Fatal(err)
		}
		var p notify.NotifyPayload
		if err := json.Unmarshal(row.Payload, &p); err != nil || p.NewIssue || p.MessageID != "<n2@x>" || p.AuthorID == 0 {
			t.Errorf("payload = %s (%v)", row.Payload, err)
		}
		// Carol takes Bob off the list with /nosy: with trust = "any" any
		// sender may (issue 8 restricts it to authenticated senders).
		mustDeliver(t, g, testMail("carol@example.org", "tracker@localhost", fmt.Sprintf("[issue%d] x", r.IssueID), "n3@x", "/nosy -bob@example.org\n\ntext"))
		if got := nosyOf(t, st, r.IssueID); got != "alice@example.org,carol@example.org" {
			t.Errorf("nosy after /nosy -bob = %s", got)
		}
		// Sub-address unsubscribe.
		res := mustDeliver(t, g, testMail("alice@example.org", fmt.Sprintf("tracker+%d-unsubscribe@localhost", r.IssueID), "bye", "n4@x", ""))
		if res.Status != store.InboundFiled || nosyOf(t, st, r.IssueID) != "carol@example.org" {
			t.Errorf("+N-unsubscribe: %+v, nosy %s", res, nosyOf(t, st, r.IssueID))
		}
		// A sub-address naming no issue is refused.
		res = mustDeliver(t, g, testMail("alice@example.org", "tracker+999@localhost", "x", "n5@x", "x"))
		if res.Status != store.InboundRejected || !strings.Contains(res.Reason, "no issue 999") {
			t.Errorf("mail to +999: %+v", res)
		}
	})
}

// TestRouting covers the order of DESIGN §5 and the subject modes.
func TestRouting(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, func(c *config.Config) { c.MailGW.SubjectContentMatch = "activity +1d" })
		first := mustDeliver(t, g, testMail("a@example.org", "tracker@localhost", "Disk full", "r1@x", "x"))
		// Title match within the window.
		r := mustDeliver(t, g, testMail("b@example.org", "tracker@localhost", "Re: disk full", "r2@x", "me too"))
		if r.IssueID != first.IssueID {
			t.Errorf("title match: issue %d, want %d", r.IssueID, first.IssueID)
		}
		// [issue] forces a new issue even with a matching title.
		r = mustDeliver(t, g, testMail("b@example.org", "tracker@localhost", "[issue] Disk full", "r3@x", "again"))
		if r.IssueID == first.IssueID || r.Status != store.InboundFiled {
			t.Errorf("[issue]: %+v, want a new issue", r)
		}
		// Strict: a designator naming no issue is refused.
		r = mustDeliver(t, g, testMail("b@example.org", "tracker@localhost", "[issue4242] Nope", "r4@x", "x"))
		if r.Status != store.InboundRejected {
			t.Errorf("strict unknown designator: %+v", r)
		}
		// Loose: it becomes title text of a new issue.
		loose := newGateway(t, st, func(c *config.Config) { c.MailGW.SubjectPrefixParsing = "loose" })
		r = mustDeliver(t, loose, testMail("b@example.org", "tracker@localhost", "[issue4242] Nope", "r5@x", "x"))
		is, err := st.Issue(t.Context(), r.IssueID)
		if err != nil || is.Title != "[issue4242] Nope" {
			t.Errorf("loose unknown designator: %+v, issue %+v, %v", r, is, err)
		}
		// A new issue without a subject is refused with a reply.
		r = mustDeliver(t, g, testMail("b@example.org", "tracker@localhost", "", "r6@x", "x"))
		if r.Status != store.InboundRejected || !r.Replied || !strings.Contains(r.Reason, "subject") {
			t.Errorf("no subject: %+v", r)
		}
		// A mail without Message-ID is idempotent by its bytes.
		raw := []byte("From: z@example.org\r\nTo: tracker@localhost\r\nSubject: No id\r\n\r\nbody\r\n")
		r1 := mustDeliver(t, g, Mail{Raw: raw, Source: "test"})
		r2 := mustDeliver(t, g, Mail{Raw: raw, Source: "test"})
		if r1.Status != store.InboundFiled || !r2.Duplicate || r1.MessageID != r2.MessageID || !strings.HasSuffix(r1.MessageID, "@localhost>") {
			t.Errorf("no Message-ID twice: %+v then %+v", r1, r2)
		}
		// The duplicate says where the first went (store.Filed).
		if r1.IssueID == 0 || r1.MsgID == 0 || r2.IssueID != r1.IssueID || r2.MsgID != r1.MsgID {
			t.Errorf("duplicate points at issue %d, message %d; the first went to %d, %d", r2.IssueID, r2.MsgID, r1.IssueID, r1.MsgID)
		}
		// A refused Message-ID is filed when it comes again after the fix.
		rej := newGateway(t, st, func(c *config.Config) { c.MailGW.UnknownSender = "reject" })
		m := testMail("stranger@example.org", "tracker@localhost", "Hi", "r7@x", "x")
		if r := mustDeliver(t, rej, m); r.Status != store.InboundRejected {
			t.Fatalf("unknown sender with reject: %+v", r)
		}
		if r := mustDeliver(t, g, m); r.Status != store.InboundFiled {
			t.Errorf("the same mail after the cause is fixed: %+v, want filed", r)
		}
	})
}

// TestStatusRules: Roundup's classic reopen rule and explicit status.
func TestStatusRules(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		g := newGateway(t, st, nil)
		r := mustDeliver(t, g, testMail("a@example.org", "tracker@localhost", "S", "s1@x", "x"))
		status := func() string {
			is, err := st.Issue(t.Context(), r.IssueID)
			if err != nil {
				t.Fatal(err)
			}
			return is.Status
		}
		if s := status(); s != "unread" {
			t.Errorf("new issue status %q", s)
		}
		subj := fmt.Sprintf("Re: [issue%d] S", r.IssueID)
		mustDeliver(t, g, testMail("b@example.org", "tracker@localhost", subj+" [status=testing]", "s2@x", "set"))
		if s := status(); s != "testing" {
			t.Errorf("explicit status: %q, want testing", s)
		}
		mustDeliver(t, g, testMail("b@example.org", "tracker@localhost", subj+" [status=resolved]", "s3@x", "done"))
		mustDeliver(t, g, testMail("a@example.org", "tracker@localhost", subj, "s4@x", "still broken"))
		if s := status(); s != "chatting" {
			t.Errorf("message on a resolved issue: %q, want chatting", s)
		}
		// A change-only mail (empty text) applies and files no message.
		res := mustDeliver(t, g, testMail("a@example.org", "tracker@localhost", subj+" [priority=wish]", "s5@x", "> quoted only\n"))
		if res.Status != store.InboundFiled || res.MsgID != 0 {
			t.Errorf("change-only mail: %+v", res)
		}
		changes, err := st.Changes(t.Context(), r.IssueID)
		if err != nil {
			t.Fatal(err)
		}
		last := changes[len(changes)-1]
		if last.Property != "priority" || last.Old != "bug" || last.New != "wish" {
			t.Errorf("journal ends with %+v", last)
		}
	})
}
