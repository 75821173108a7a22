package mailgw

// In-process tests of the SMTP/LMTP listener, driven by go-smtp's real
// client over loopback TCP, on SQLite and on PostgreSQL.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testcert"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/store"
)

// testListener is a listener serving on a loopback port.
type testListener struct {
	l      *Listener
	st     *store.Store
	addr   string
	logs   *testenv.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startListener serves a listener for st, configured by edit, until the
// test ends (or stop is called).
func startListener(t testing.TB, st *store.Store, edit func(*config.Config)) *testListener {
	t.Helper()
	cfg := config.Default()
	cfg.SMTP.Listen = "127.0.0.1:0"
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw := New(st, cfg, log, Options{})
	l, err := NewListener(gw, log)
	if err != nil {
		t.Fatalf("NewListener: %v", err)
	}
	ln, err := l.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &testListener{l: l, st: st, addr: ln.Addr().String(), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { tl.done <- l.Serve(ctx, ln) }()
	t.Cleanup(func() {
		tl.stop(t)
		if strings.Contains(logs.String(), `msg="smtp: panic`) {
			t.Errorf("the listener logged a panic:\n%s", logs.String())
		}
	})
	return tl
}

// stop cancels Serve and waits for it to return.
func (tl *testListener) stop(t testing.TB) {
	t.Helper()
	tl.cancel()
	select {
	case err, ok := <-tl.done:
		if ok && err != nil {
			t.Errorf("Serve: %v", err)
		}
		close(tl.done)
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve did not return within 30s of the cancel")
	}
}

func (tl *testListener) dial(t *testing.T) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(tl.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

// mailText is a plain mail as a client would send it.
func mailText(from, subject, id, body string, headers ...string) string {
	return string(testMail(from, "tracker@localhost", subject, id, body, headers...).Raw)
}

// wantCode checks that err is an SMTP reply with code and enhanced code,
// and returns its text.
func wantCode(t *testing.T, what string, err error, code int, enh smtp.EnhancedCode) string {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("%s: got %v, want a %d reply", what, err, code)
	}
	if se.Code != code || se.EnhancedCode != enh {
		t.Fatalf("%s: got %d %v %q, want %d %v", what, se.Code, se.EnhancedCode, se.Message, code, enh)
	}
	return se.Message
}

func inbound(t *testing.T, st *store.Store) []store.Inbound {
	t.Helper()
	in, err := st.ListInbound(context.Background(), store.InboundFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestSMTPGreetingAndExtensions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) { c.SMTP.MaxMessageBytes = 123456 })
		c := tl.dial(t)
		for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"} {
			if ok, _ := c.Extension(ext); !ok {
				t.Errorf("EHLO does not advertise %s", ext)
			}
		}
		if ok, size := c.Extension("SIZE"); !ok || size != "123456" {
			t.Errorf("EHLO SIZE = %v %q, want 123456", ok, size)
		}
		if ok, _ := c.Extension("STARTTLS"); ok {
			t.Errorf("EHLO advertises STARTTLS without smtp.tls_cert")
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Errorf("EHLO advertises AUTH; the listener takes no logins")
		}
	})
}

// TestSMTPRecipients: only the tracker's address and its sub-addresses
// are taken; the listener is never a relay.
func TestSMTPRecipients(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, nil)
		c := tl.dial(t)
		reply, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, mailText("alice@example.org", "First", "r1@example.org", "Hello."))
		if err != nil {
			t.Fatalf("first mail: %v", err)
		}
		var issue int64
		if _, err := fmt.Sscanf(reply, "2.0.0 filed as issue %d", &issue); err != nil {
			t.Fatalf("reply %q does not name the issue", reply)
		}
		if err := c.Mail("alice@example.org", nil); err != nil {
			t.Fatal(err)
		}
		for _, ok := range []string{"tracker@localhost", "TRACKER@LocalHost", fmt.Sprintf("tracker+%d@localhost", issue),
			fmt.Sprintf("tracker+%d-subscribe@localhost", issue), fmt.Sprintf("tracker+%d-unsubscribe@localhost", issue),
			"tracker+bounce-abc123@localhost"} {
			if err := c.Rcpt(ok, nil); err != nil {
				t.Errorf("RCPT TO:<%s>: %v, want 250", ok, err)
			}
		}
		for _, bad := range []string{"postmaster@localhost", "tracker@example.org", "victim@elsewhere.example", "tracker+x@localhost",
			"tracker+@localhost", "tracker+0@localhost"} {
			msg := wantCode(t, "RCPT TO:<"+bad+">", c.Rcpt(bad, nil), 550, smtp.EnhancedCode{5, 1, 1})
			if !strings.Contains(msg, "relaying denied") {
				t.Errorf("RCPT TO:<%s>: %q does not say relaying is denied", bad, msg)
			}
		}
		for _, missing := range []string{"tracker+99@localhost", "tracker+99-subscribe@localhost"} {
			msg := wantCode(t, "RCPT TO:<"+missing+">", c.Rcpt(missing, nil), 550, smtp.EnhancedCode{5, 1, 1})
			if !strings.Contains(msg, "there is no issue 99") {
				t.Errorf("RCPT TO:<%s>: %q does not say the issue does not exist", missing, msg)
			}
		}
		if err := c.Reset(); err != nil {
			t.Fatal(err)
		}
		// A relay attempt alone: no recipient, so DATA is refused.
		if err := c.Mail("spammer@example.net", nil); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "RCPT to a stranger", c.Rcpt("victim@elsewhere.example", nil), 550, smtp.EnhancedCode{5, 1, 1})
		if _, err := c.Data(); err == nil {
			t.Errorf("DATA after every recipient was refused: accepted")
		}
		if n := len(inbound(t, st)); n != 1 {
			t.Errorf("%d inbound rows, want only the first mail's", n)
		}
	})
}

// TestSMTPFiledOnReply: the 250 comes after the commit, so the mail is in
// the store when the client reads it; each state change is logged with
// the connection's keys.
func TestSMTPFiledOnReply(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, nil)
		c := tl.dial(t)
		reply, err := testmail.Send(c, "bob@example.org", []string{"tracker@localhost"},
			mailText("Bob <bob@example.org>", "Printer on fire", "fire@example.org", "It is on fire.\r\n"))
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		var issue int64
		if _, err := fmt.Sscanf(reply, "2.0.0 filed as issue %d", &issue); err != nil {
			t.Fatalf("reply %q does not name the issue", reply)
		}
		ctx := context.Background()
		is, err := st.Issue(ctx, issue)
		if err != nil {
			t.Fatalf("issue %d after the 250: %v", issue, err)
		}
		if is.Title != "Printer on fire" {
			t.Errorf("title = %q", is.Title)
		}
		msgs, err := st.Messages(ctx, issue)
		if err != nil || len(msgs) != 1 || msgs[0].MessageID != "<fire@example.org>" {
			t.Fatalf("messages of issue %d = %+v, %v", issue, msgs, err)
		}
		in := inbound(t, st)
		if len(in) != 1 || in[0].Source != "smtp" || in[0].Status != store.InboundFiled || in[0].EnvelopeFrom != "bob@example.org" ||
			len(in[0].EnvelopeTo) != 1 || in[0].EnvelopeTo[0] != "tracker@localhost" {
			t.Errorf("inbound = %+v", in)
		}
		// The same mail again (an MTA retrying after a lost 250) is
		// acknowledged and not filed twice.
		reply, err = testmail.Send(c, "bob@example.org", []string{"tracker@localhost"},
			mailText("Bob <bob@example.org>", "Printer on fire", "fire@example.org", "It is on fire.\r\n"))
		if err != nil || !strings.Contains(reply, "not filed: duplicate") {
			t.Errorf("second delivery: %q, %v; want 250 naming the duplicate", reply, err)
		}
		if n, _ := st.CountIssues(ctx, store.IssueFilter{}); n != 1 {
			t.Errorf("%d issues after a duplicate delivery, want 1", n)
		}
		logs := tl.logs.String()
		for _, state := range []string{"mail received", "mail filed"} {
			line := lineWith(logs, state)
			for _, key := range []string{"conn_id=", "remote=127.0.0.1:", "message_id=<fire@example.org>"} {
				if !strings.Contains(line, key) {
					t.Errorf("log line %q lacks %s", line, key)
				}
			}
		}
		if line := lineWith(logs, "mail filed"); !strings.Contains(line, fmt.Sprintf("issue_id=%d", issue)) {
			t.Errorf("log line %q lacks issue_id", line)
		}
	})
}

func lineWith(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestSMTPSenderFaults: a mail the gateway refuses gets a 5xx that says
// why, is kept as rejected, and gets no error reply by mail (the sending
// MTA bounces it with our text); an automatic reply is taken and not filed.
func TestSMTPSenderFaults(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, nil)
		c := tl.dial(t)
		_, err := testmail.Send(c, "carol@example.org", []string{"tracker@localhost"},
			mailText("carol@example.org", "Re: [issue4711] still broken", "ghost@example.org", "Any news?"))
		msg := wantCode(t, "mail naming a missing issue", err, 554, smtp.EnhancedCode{5, 6, 0})
		if !strings.Contains(msg, "there is no issue 4711") {
			t.Errorf("554 text %q does not say what is wrong", msg)
		}
		_, err = testmail.Send(c, "carol@example.org", []string{"tracker@localhost"}, mailText("carol@example.org", "", "nosubject@example.org", "No subject."))
		msg = wantCode(t, "new issue without a subject", err, 554, smtp.EnhancedCode{5, 6, 0})
		if !strings.Contains(msg, "Subject") {
			t.Errorf("554 text %q does not say a subject is needed", msg)
		}
		reply, err := testmail.Send(c, "carol@example.org", []string{"tracker@localhost"},
			mailText("carol@example.org", "Out of office", "ooo@example.org", "I am away.", "Auto-Submitted: auto-replied"))
		if err != nil || !strings.Contains(reply, "accepted, not filed") {
			t.Errorf("auto-reply: %q, %v; want 250 not filed", reply, err)
		}
		in := inbound(t, st)
		status := map[string]string{}
		for _, r := range in {
			status[r.MessageID] = r.Status
		}
		want := map[string]string{"<ghost@example.org>": store.InboundRejected, "<nosubject@example.org>": store.InboundRejected, "<ooo@example.org>": store.InboundIgnored}
		for id, s := range want {
			if status[id] != s {
				t.Errorf("inbound %s = %q, want %q", id, status[id], s)
			}
		}
		out, err := st.ListOutbox(context.Background(), store.OutboxFilter{})
		if err != nil || len(out) != 0 {
			t.Errorf("outbox = %+v, %v; want no error reply (the 5xx is the reply)", out, err)
		}
	})
}

// TestSMTPOversize: 552 5.3.4 for a declared SIZE and for DATA beyond
// the limit; the session goes on, nothing is stored.
func TestSMTPOversize(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) { c.SMTP.MaxMessageBytes = 2000 })
		c := tl.dial(t)
		wantCode(t, "MAIL SIZE=5000", c.Mail("dave@example.org", &smtp.MailOptions{Size: 5000}), 552, smtp.EnhancedCode{5, 3, 4})
		big := mailText("dave@example.org", "Big", "big@example.org", strings.Repeat("0123456789abcdef\r\n", 200))
		_, err := testmail.Send(c, "dave@example.org", []string{"tracker@localhost"}, big)
		if msg := wantCode(t, "DATA of 3600 bytes", err, 552, smtp.EnhancedCode{5, 3, 4}); !strings.Contains(msg, "2000 bytes") {
			t.Errorf("552 text %q does not give the limit", msg)
		}
		if _, err := testmail.Send(c, "dave@example.org", []string{"tracker@localhost"}, mailText("dave@example.org", "Small", "small@example.org", "ok")); err != nil {
			t.Errorf("a small mail after the refused one: %v", err)
		}
		if in := inbound(t, st); len(in) != 1 || in[0].MessageID != "<small@example.org>" {
			t.Errorf("inbound = %+v, want only the small mail", in)
		}
	})
}

// TestSMTPOwnFaults: with the store gone, RCPT of a sub-address and DATA
// answer 451 4.3.0 with a generic text, never a 5xx, never the error.
func TestSMTPOwnFaults(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		st := storetest.Open(t, o)
		tl := startListener(t, st, nil)
		c := tl.dial(t)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("erin@example.org", nil); err != nil {
			t.Fatal(err)
		}
		msg := wantCode(t, "RCPT of a sub-address, store down", c.Rcpt("tracker+1@localhost", nil), 451, smtp.EnhancedCode{4, 3, 0})
		if msg != tempFailure.Message {
			t.Errorf("451 text = %q, want the generic %q", msg, tempFailure.Message)
		}
		_ = c.Reset()
		_, err := testmail.Send(c, "erin@example.org", []string{"tracker@localhost"}, mailText("erin@example.org", "Down", "down@example.org", "x"))
		if msg := wantCode(t, "DATA, store down", err, 451, smtp.EnhancedCode{4, 3, 0}); msg != tempFailure.Message {
			t.Errorf("451 text = %q, want the generic %q", msg, tempFailure.Message)
		}
		if !strings.Contains(tl.logs.String(), "mail deferred") {
			t.Errorf("no \"mail deferred\" log line:\n%s", tl.logs.String())
		}
	})
}

// TestSMTPReplyMapping: every error becomes an unwrapped *smtp.SMTPError,
// and our own errors never show their text.
func TestSMTPReplyMapping(t *testing.T) {
	l := &Listener{server: &smtp.Server{MaxMessageBytes: 1000, MaxLineLength: 2000}}
	secret := errors.New("pq: password authentication failed for user trackerd at 10.0.0.5")
	for _, tc := range []struct {
		err  error
		code int
		enh  smtp.EnhancedCode
	}{
		{&refusal{code: 550, enh: smtp.EnhancedCode{5, 1, 1}, text: "no"}, 550, smtp.EnhancedCode{5, 1, 1}},
		{fmt.Errorf("wrapped: %w", &refusal{code: 554, enh: smtp.EnhancedCode{5, 6, 0}, text: "no"}), 554, smtp.EnhancedCode{5, 6, 0}},
		{smtp.ErrDataTooLarge, 552, smtp.EnhancedCode{5, 3, 4}},
		{fmt.Errorf("read: %w", smtp.ErrDataTooLarge), 552, smtp.EnhancedCode{5, 3, 4}},
		{smtp.ErrTooLongLine, 500, smtp.EnhancedCode{5, 5, 2}},
		{errDraining, 421, smtp.EnhancedCode{4, 3, 2}},
		{secret, 451, smtp.EnhancedCode{4, 3, 0}},
		{fmt.Errorf("mailgw: file mail: %w", store.ErrDuplicate), 451, smtp.EnhancedCode{4, 3, 0}},
		{context.DeadlineExceeded, 451, smtp.EnhancedCode{4, 3, 0}},
		{io.ErrUnexpectedEOF, 451, smtp.EnhancedCode{4, 3, 0}},
	} {
		got := l.smtpReply(tc.err)
		se, ok := got.(*smtp.SMTPError) // a type assertion, as go-smtp does: no unwrapping
		if !ok {
			t.Errorf("smtpReply(%v) = %T, want *smtp.SMTPError", tc.err, got)
			continue
		}
		if se.Code != tc.code || se.EnhancedCode != tc.enh {
			t.Errorf("smtpReply(%v) = %d %v, want %d %v", tc.err, se.Code, se.EnhancedCode, tc.code, tc.enh)
		}
		if strings.Contains(se.Message, "pq:") || strings.Contains(se.Message, "10.0.0.5") {
			t.Errorf("smtpReply(%v) leaks the error: %q", tc.err, se.Message)
		}
	}
	if l.smtpReply(nil) != nil {
		t.Errorf("smtpReply(nil) != nil")
	}
	if got := replyText("bad\r\nsubject \"été\"\x00 "+strings.Repeat("x", 900), 5); strings.ContainsAny(got, "\r\x00é") ||
		len(strings.Split(got, "\n")[0]) > 400 {
		t.Errorf("replyText = %q: want printable ASCII lines of at most 400 bytes", got)
	}
}

// TestSMTPGroupCommit: mails of concurrent sessions share transactions,
// each session is answered after its batch commits, and every mail is
// filed exactly once.
func TestSMTPGroupCommit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, nil)
		const n = 20
		release := make(chan struct{})
		var mu sync.Mutex
		var sizes []int
		tl.l.commit.beforeFlush = func(size int) {
			mu.Lock()
			sizes = append(sizes, size)
			mu.Unlock()
			<-release
		}
		var wg sync.WaitGroup
		replies := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			c := tl.dial(t)
			wg.Go(func() {
				replies[i], errs[i] = testmail.Send(c, "frank@example.org", []string{"tracker@localhost"},
					mailText("frank@example.org", fmt.Sprintf("Issue %d", i), fmt.Sprintf("gc%d@example.org", i), "text"))
			})
		}
		// Every mail is waiting for a commit: the first batches are held
		// in beforeFlush, the rest wait to be taken.
		deadline := time.Now().Add(30 * time.Second)
		for tl.l.commit.waiting.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d mails reached the committer", tl.l.commit.waiting.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(release)
		wg.Wait()
		issues := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("mail %d: %v", i, errs[i])
			}
			issues[replies[i]] = true
		}
		if len(issues) != n {
			t.Errorf("%d distinct replies for %d mails: %v", len(issues), n, replies)
		}
		total := 0
		for _, s := range sizes {
			total += s
		}
		if total != n || len(sizes) >= n {
			t.Errorf("batch sizes %v: want %d mails in fewer than %d batches", sizes, n, n)
		}
		if c, _ := st.CountIssues(context.Background(), store.IssueFilter{}); c != n {
			t.Errorf("%d issues, want %d", c, n)
		}
	})
}

// TestSMTPDrain: on shutdown, a mail in flight is filed and answered,
// new connections and new transactions get 421, and Serve returns.
func TestSMTPDrain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, nil)
		release := make(chan struct{})
		tl.l.commit.beforeFlush = func(int) { <-release }
		idle := tl.dial(t)
		busy := tl.dial(t)
		// A raw idle session, to read what the end of the drain says.
		raw, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		rawr := bufio.NewReader(raw)
		if g, _ := rawr.ReadString('\n'); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("greeting %q", g)
		}
		result := make(chan error, 1)
		go func() {
			_, err := testmail.Send(busy, "gina@example.org", []string{"tracker@localhost"}, mailText("gina@example.org", "In flight", "flight@example.org", "x"))
			result <- err
		}()
		for tl.l.commit.waiting.Load() < 1 {
			time.Sleep(5 * time.Millisecond)
		}
		tl.cancel()
		// New connections get 421 in place of the greeting.
		var greeting string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			conn, err := net.Dial("tcp", tl.addr)
			if err != nil {
				t.Fatalf("dial while draining: %v", err)
			}
			greeting, _ = bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(greeting, "421 ") {
				break
			}
		}
		if !strings.HasPrefix(greeting, "421 4.3.2 ") {
			t.Errorf("greeting while draining = %q, want 421 4.3.2", greeting)
		}
		wantCode(t, "MAIL while draining", idle.Mail("hank@example.org", nil), 421, smtp.EnhancedCode{4, 3, 2})
		close(release)
		if err := <-result; err != nil {
			t.Errorf("the mail in flight: %v, want 250", err)
		}
		select {
		case err := <-tl.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
			tl.done <- nil
		case <-time.After(30 * time.Second):
			t.Fatal("Serve did not return after the drain")
		}
		if c, _ := st.CountIssues(context.Background(), store.IssueFilter{}); c != 1 {
			t.Errorf("%d issues after the drain, want the one in flight", c)
		}
		// An idle session is told before its connection closes.
		_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		if bye, err := rawr.ReadString('\n'); !strings.HasPrefix(bye, "421 4.3.2 ") {
			t.Errorf("idle session at the end of the drain: %q, %v; want 421 4.3.2", bye, err)
		}
	})
}

// TestSMTPConnectionLimits: smtp.max_connections_per_ip and
// smtp.max_connections refuse with 421 and free their slot on close.
func TestSMTPConnectionLimits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) {
			c.SMTP.MaxConnectionsPerIP = 2
			c.SMTP.MaxConnections = 3
		})
		greet := func(addr string, local string) (net.Conn, string) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial from %s: %v", local, err)
			}
			line, _ := bufio.NewReader(conn).ReadString('\n')
			return conn, line
		}
		a, g1 := greet(tl.addr, "127.0.0.1")
		_, g2 := greet(tl.addr, "127.0.0.1")
		c, g3 := greet(tl.addr, "127.0.0.1")
		if !strings.HasPrefix(g1, "220 ") || !strings.HasPrefix(g2, "220 ") {
			t.Fatalf("greetings %q %q, want 220", g1, g2)
		}
		if !strings.HasPrefix(g3, "421 4.3.2 ") || !strings.Contains(g3, "from your address") {
			t.Errorf("third connection from one IP: %q, want 421 naming the per-address limit", g3)
		}
		c.Close()
		// Another address is admitted (Linux routes all of 127/8 to lo).
		_, g4 := greet(tl.addr, "127.0.0.2")
		if !strings.HasPrefix(g4, "220 ") {
			t.Errorf("connection from another address: %q, want 220", g4)
		}
		_, g5 := greet(tl.addr, "127.0.0.3")
		if !strings.HasPrefix(g5, "421 4.3.2 ") || !strings.Contains(g5, "too many connections") {
			t.Errorf("fourth connection: %q, want 421 (max_connections = 3)", g5)
		}
		// Closing one frees its slot.
		a.Close()
		var g6 string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var conn net.Conn
			conn, g6 = greet(tl.addr, "127.0.0.1")
			if strings.HasPrefix(g6, "220 ") {
				break
			}
			conn.Close()
		}
		if !strings.HasPrefix(g6, "220 ") {
			t.Errorf("after a close, a new connection got %q, want 220", g6)
		}
	})
}

// TestLMTP: LHLO only, and one reply per recipient after DATA (RFC 2033
// §4.2).
func TestLMTP(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) { c.SMTP.LMTP = true })
		conn, err := net.Dial("tcp", tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		reply := func(cmd string) string {
			t.Helper()
			if cmd != "" {
				fmt.Fprintf(conn, "%s\r\n", cmd)
			}
			var all string
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("after %q: %v (read %q)", cmd, err, all)
				}
				all += line
				if len(line) >= 4 && line[3] == ' ' {
					return all
				}
			}
		}
		if g := reply(""); !strings.Contains(g, "LMTP") {
			t.Errorf("greeting %q does not say LMTP", g)
		}
		if got := reply("EHLO client.example.org"); !strings.HasPrefix(got, "500 ") {
			t.Errorf("EHLO on LMTP: %q, want 500", got)
		}
		if got := reply("LHLO client.example.org"); !strings.Contains(got, "250-PIPELINING") {
			t.Errorf("LHLO: %q", got)
		}
		reply("MAIL FROM:<ida@example.org>")
		reply("RCPT TO:<tracker@localhost>")
		if got := reply("RCPT TO:<tracker+77@localhost>"); !strings.HasPrefix(got, "550 5.1.1 ") {
			t.Errorf("RCPT of a missing issue: %q", got)
		}
		reply("RCPT TO:<Tracker@localhost>") // the same address again: RFC 2033 wants a reply for it too
		if got := reply("DATA"); !strings.HasPrefix(got, "354 ") {
			t.Fatalf("DATA: %q", got)
		}
		fmt.Fprint(conn, mailText("ida@example.org", "Via LMTP", "lmtp@example.org", "x")+"\r\n.\r\n")
		first, second := reply(""), reply("")
		for i, got := range []string{first, second} {
			want := []string{"<tracker@localhost>", "<Tracker@localhost>"}[i]
			if !strings.HasPrefix(got, "250 2.0.0 "+want+" filed as issue ") {
				t.Errorf("LMTP reply %d = %q, want 250 for %s", i+1, got, want)
			}
		}
		if in := inbound(t, st); len(in) != 1 || in[0].Source != "lmtp" {
			t.Errorf("inbound = %+v, want one mail from lmtp", in)
		}
	})
}

// TestSMTPStartTLS: with smtp.tls_cert and smtp.tls_key, STARTTLS is
// offered and a mail goes through the encrypted session.
func TestSMTPStartTLS(t *testing.T) {
	certFile, keyFile, pool := testcert.Files(t, t.TempDir())
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		tl := startListener(t, st, func(c *config.Config) { c.SMTP.TLSCert, c.SMTP.TLSKey = certFile, keyFile })
		c, err := smtp.DialStartTLS(tl.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("DialStartTLS: %v", err)
		}
		defer c.Close()
		if _, ok := c.TLSConnectionState(); !ok {
			t.Fatal("no TLS after STARTTLS")
		}
		if _, err := testmail.Send(c, "jane@example.org", []string{"tracker@localhost"}, mailText("jane@example.org", "Secret", "tls@example.org", "x")); err != nil {
			t.Fatalf("send over TLS: %v", err)
		}
		if !strings.Contains(tl.logs.String(), "msg=\"smtp session\" conn_id=") || !strings.Contains(tl.logs.String(), "tls=true") {
			t.Errorf("the session after STARTTLS is not logged as TLS:\n%s", tl.logs.String())
		}
	})
}
