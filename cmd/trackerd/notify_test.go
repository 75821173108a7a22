package main

// End-to-end tests of notifications through the built binary: mail goes
// in with `trackerd deliver` (or import), notifications come out through
// the SMTP relay into an in-test go-smtp server that keeps every message,
// on SQLite and on PostgreSQL.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/corpus"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
)

// relaySink is an SMTP server standing in for the relay: it keeps every
// message it accepts, and every DATA it saw (accepted or not).
type relaySink struct {
	srv  *smtp.Server
	addr string

	mu       sync.Mutex
	accepted []sunkMail
	seen     []sunkMail
	// hold, when set, is called after a message's data is read and before
	// the answer; it returns false to refuse the message (4xx).
	hold func(m sunkMail) bool
}

type sunkMail struct {
	from, to string
	data     []byte
}

func (m sunkMail) header(name string) string {
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

// newRelaySink listens on addr ("" for a free port) until t ends.
func newRelaySink(t *testing.T, addr string) *relaySink {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &relaySink{addr: l.Addr().String()}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{s: s}, nil }))
	s.srv.Domain = "relay.test"
	s.srv.ReadTimeout, s.srv.WriteTimeout = time.Minute, time.Minute
	s.srv.MaxMessageBytes, s.srv.MaxRecipients = 32<<20, 10
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *relaySink) mails() []sunkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunkMail(nil), s.accepted...)
}

// to returns the accepted mails to rcpt.
func (s *relaySink) to(rcpt string) []sunkMail {
	var out []sunkMail
	for _, m := range s.mails() {
		if strings.EqualFold(m.to, rcpt) {
			out = append(out, m)
		}
	}
	return out
}

type relaySession struct {
	s    *relaySink
	from string
	to   []string
}

func (rs *relaySession) Mail(from string, _ *smtp.MailOptions) error { rs.from = from; return nil }
func (rs *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	rs.to = append(rs.to, to)
	return nil
}
func (rs *relaySession) Reset()        { rs.from, rs.to = "", nil }
func (rs *relaySession) Logout() error { return nil }
func (rs *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(rs.to) != 1 {
		return errors.New("want one recipient per mail")
	}
	m := sunkMail{from: rs.from, to: rs.to[0], data: b}
	rs.s.mu.Lock()
	rs.s.seen = append(rs.s.seen, m)
	hold := rs.s.hold
	rs.s.mu.Unlock()
	if hold != nil && !hold(m) {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now"}
	}
	rs.s.mu.Lock()
	rs.s.accepted = append(rs.s.accepted, m)
	rs.s.mu.Unlock()
	return nil
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appendConfig adds TOML to the environment's config file.
func (e *cliEnv) appendConfig(t *testing.T, toml string) {
	t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, e.config, string(b)+toml)
}

func (e *cliEnv) outbox(t *testing.T) []outboxRowJSON {
	t.Helper()
	var rows []outboxRowJSON
	contract.Decode(t, e.mustRun(t, "outbox", "list", "-json"), &rows)
	return rows
}

// TestNotifyEndToEnd: a reply on an issue with three nosy members yields
// exactly one mail to each of the other two, none to the author, with
// every header of DESIGN §6 and a DKIM signature that verifies; a
// notification fed back through deliver files nothing; +N-unsubscribe
// removes the sender; DSNs to a notification's VERP address mark the
// recipient bouncing (no more mail) until mail from them comes in.
func TestNotifyEndToEnd(t *testing.T) {
	bounces := filepath.Join(corpus.Dir(t), "bounces")
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		s := newRelaySink(t, "")
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(e.dir, "dkim.pem")
		writeConfig(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
		pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		txt := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
		e.appendConfig(t, fmt.Sprintf("[outgoing]\nrelay = \"smtp://%s\"\ndkim_domain = \"localhost\"\ndkim_selector = \"t1\"\ndkim_key_file = %q\n", s.addr, keyFile))

		e.mustDeliver(t, msg("Alice <alice@example.org>", "Printer on fire", "open@example.org", "It burns.",
			"Cc: Bob <bob@example.org>, Carol <carol@example.org>"))
		if d := e.issue(t, 1); len(d.Nosy) != 3 {
			t.Fatalf("nosy after the opening mail = %v, want alice, bob, carol", d.Nosy)
		}
		if n := len(s.mails()); n != 0 {
			t.Errorf("%d notifications of the opening mail; bob and carol were in Cc and got it already", n)
		}
		e.mustDeliver(t, msg("Bob <bob@example.org>", "Re: Printer on fire", "reply1@example.org", "Have you tried water?",
			"In-Reply-To: <open@example.org>"), "-from", "bob@example.org", "-to", "tracker+1@localhost")
		got := s.mails()
		if len(got) != 2 || len(s.to("alice@example.org")) != 1 || len(s.to("carol@example.org")) != 1 {
			var to []string
			for _, m := range got {
				to = append(to, m.to)
			}
			t.Fatalf("notifications of bob's reply went to %v; want alice and carol once each", to)
		}
		lookup := func(domain string) ([]string, error) {
			if domain == "t1._domainkey.localhost" {
				return []string{txt}, nil
			}
			return nil, fmt.Errorf("no TXT for %s", domain)
		}
		for _, m := range got {
			for h, want := range map[string]string{
				"From":                     `"Bob (trackerd)" <tracker@localhost>`,
				"Reply-To":                 "<tracker+1@localhost>",
				"Subject":                  "[issue1] Printer on fire",
				"Message-ID":               "<reply1@example.org>",
				"In-Reply-To":              "<open@example.org>",
				"References":               "<open@example.org>",
				"List-Id":                  `"trackerd" <tracker.localhost>`,
				"List-Unsubscribe-Post":    "List-Unsubscribe=One-Click",
				"Auto-Submitted":           "auto-generated",
				"X-Auto-Response-Suppress": "All",
				"X-Tracker-Loop":           "tracker@localhost",
				"X-Tracker-Issue":          "1",
				"X-Tracker-Status":         "chatting",
				"X-Tracker-Priority":       "bug",
			} {
				if v := m.header(h); v != want {
					t.Errorf("mail to %s: %s = %q, want %q", m.to, h, v, want)
				}
			}
			lu := m.header("List-Unsubscribe")
			if !strings.HasPrefix(lu, "<mailto:tracker+1-unsubscribe@localhost>, <http://127.0.0.1:8080/unsubscribe/") {
				t.Errorf("mail to %s: List-Unsubscribe = %q", m.to, lu)
			}
			if !strings.HasPrefix(m.from, "tracker+bounce-") || !strings.HasSuffix(m.from, "@localhost") {
				t.Errorf("mail to %s: envelope sender %q, want tracker+bounce-TOKEN@localhost", m.to, m.from)
			}
			vs, err := dkim.VerifyWithOptions(strings.NewReader(string(m.data)), &dkim.VerifyOptions{LookupTXT: lookup})
			if err != nil || len(vs) != 1 || vs[0].Err != nil {
				t.Errorf("mail to %s: DKIM: %v %+v", m.to, err, vs)
			}
		}

		// Loop: a notification coming back is not filed.
		out := e.mustDeliver(t, string(got[0].data), "-from", "alice@example.org", "-to", "tracker+1@localhost")
		if !strings.HasPrefix(out, "ignored") || !strings.Contains(out, "loop") {
			t.Errorf("a notification fed back: %q; want ignored as a loop", out)
		}
		if d := e.issue(t, 1); len(d.Messages) != 2 {
			t.Errorf("issue 1 has %d messages after the loop, want 2", len(d.Messages))
		}

		// Unsubscribe by mail.
		e.mustDeliver(t, msg("Carol <carol@example.org>", "unsubscribe", "unsub@example.org", ""), "-to", "tracker+1-unsubscribe@localhost")
		if d := e.issue(t, 1); strings.Join(d.Nosy, ",") != "alice@example.org,bob@example.org" {
			t.Errorf("nosy after carol's +1-unsubscribe = %v", d.Nosy)
		}
		e.mustDeliver(t, msg("Alice <alice@example.org>", "Re: Printer on fire", "reply2@example.org", "Water made it worse."), "-to", "tracker+1@localhost")
		if n := len(s.to("carol@example.org")); n != 1 {
			t.Errorf("carol got %d mails after unsubscribing, want still 1", n)
		}
		toBob := s.to("bob@example.org")
		if len(toBob) != 1 {
			t.Fatalf("bob got %d notifications of alice's reply, want 1", len(toBob))
		}

		// Bounces: three hard DSNs to the VERP address mark bob bouncing.
		verp := toBob[0].from
		for _, f := range []string{"sisimai__bsd__lhost-postfix-01.eml", "flanker__bounce__office365.eml", "sisimai__bsd__lhost-exim-01.eml"} {
			raw, err := os.ReadFile(filepath.Join(bounces, f))
			if err != nil {
				t.Fatal(err)
			}
			out := e.mustDeliver(t, string(raw), "-from", "", "-to", verp)
			if !strings.HasPrefix(out, "ignored") || !strings.Contains(out, "counted a hard") || !strings.Contains(out, "bob@example.org") {
				t.Errorf("DSN %s: %q; want ignored, a hard bounce counted for bob", f, out)
			}
		}
		if out := e.mustRun(t, "user", "show", "bob@example.org"); !strings.Contains(out, "bouncing:   YES: 3 hard bounces") {
			t.Errorf("user show bob after three hard bounces:\n%s", out)
		}
		e.mustDeliver(t, msg("Alice <alice@example.org>", "Re: Printer on fire", "reply3@example.org", "Fire brigade called."), "-to", "tracker+1@localhost")
		if n := len(s.to("bob@example.org")); n != 1 {
			t.Errorf("bouncing bob got %d mails, want still 1", n)
		}
		e.mustDeliver(t, msg("Bob <bob@example.org>", "Re: Printer on fire", "reply4@example.org", "I am back."), "-to", "tracker+1@localhost")
		if out := e.mustRun(t, "user", "show", "bob@example.org"); !strings.Contains(out, "bouncing:   no\n") {
			t.Errorf("user show bob after his own mail:\n%s", out)
		}
		e.mustDeliver(t, msg("Alice <alice@example.org>", "Re: Printer on fire", "reply5@example.org", "Welcome back."), "-to", "tracker+1@localhost")
		if n := len(s.to("bob@example.org")); n != 2 {
			t.Errorf("bob got %d mails after his address worked again, want 2", n)
		}
	})
}

// TestNotifyRelayDown: with the relay down, rows stay pending and
// `outbox list -json` shows them; when the relay is back, `outbox retry`
// delivers every one exactly once.
func TestNotifyRelayDown(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		e.appendConfig(t, fmt.Sprintf("[outgoing]\nrelay = \"smtp://%s\"\n", addr))
		e.mustDeliver(t, msg("Alice <alice@example.org>", "Scanner jammed", "s1@example.org", "Paper stuck."))
		e.mustDeliver(t, msg("Bob <bob@example.org>", "Re: Scanner jammed", "s2@example.org", "Pull it out.", "In-Reply-To: <s1@example.org>"))
		e.mustDeliver(t, msg("Carol <carol@example.org>", "Re: Scanner jammed", "s3@example.org", "Gently.", "In-Reply-To: <s2@example.org>"))
		rows := e.outbox(t)
		if len(rows) != 3 {
			t.Fatalf("outbox has %d rows, want 3 (alice; alice and bob)", len(rows))
		}
		withError := 0
		for _, r := range rows {
			if r.Status != "pending" {
				t.Errorf("row %d: status %s with the relay down, want pending", r.ID, r.Status)
			}
			if r.LastError != "" {
				withError++
				if !strings.Contains(r.LastError, addr) {
					t.Errorf("row %d: last_error %q does not name the relay", r.ID, r.LastError)
				}
			}
		}
		if withError == 0 {
			t.Errorf("no row says why it is pending: %+v", rows)
		}

		s := newRelaySink(t, addr)
		out := e.mustRun(t, "outbox", "retry", "-status", "pending")
		if !strings.Contains(out, "queued 3 rows again") || !strings.Contains(out, "sent 3") {
			t.Errorf("outbox retry: %q", out)
		}
		if n, a, b := len(s.mails()), len(s.to("alice@example.org")), len(s.to("bob@example.org")); n != 3 || a != 2 || b != 1 {
			t.Errorf("after the relay came back: %d mails (alice %d, bob %d); want 3 (2, 1)", n, a, b)
		}
		for _, r := range e.outbox(t) {
			if r.Status != "sent" {
				t.Errorf("row %d: %s after retry, want sent", r.ID, r.Status)
			}
		}
		if out := e.mustRun(t, "outbox", "retry", "-status", "pending"); !strings.Contains(out, "queued 0 rows") {
			t.Errorf("second outbox retry: %q", out)
		}
		// drop removes rows; retry of a dropped id finds nothing.
		if out := e.mustRun(t, "outbox", "drop", fmt.Sprint(rows[0].ID)); !strings.Contains(out, "dropped 1 rows") {
			t.Errorf("outbox drop: %q", out)
		}
		if n := len(e.outbox(t)); n != 2 {
			t.Errorf("%d rows after a drop, want 2", n)
		}
		if len(s.mails()) != 3 {
			t.Errorf("the relay got %d mails in all, want 3", len(s.mails()))
		}
	})
}

// TestNotifyKill: SIGKILL while notifications are being sent (import's
// flush, two connections busy); serve then sends the rest once the dead
// process's lease ends. Every notification is accepted exactly once; the
// ones in flight at the kill are resent with the same Message-ID.
func TestNotifyKill(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		s := newRelaySink(t, "")
		gate := make(chan struct{})
		var mu sync.Mutex
		n, killed := 0, false
		s.hold = func(sunkMail) bool {
			mu.Lock()
			n++
			first := n <= 5
			mu.Unlock()
			if first {
				return true
			}
			<-gate
			mu.Lock()
			defer mu.Unlock()
			return !killed // the client that sent it is dead: it never saw an answer
		}
		e.appendConfig(t, fmt.Sprintf("[outgoing]\nrelay = \"smtp://%s\"\nconnections = 2\nclaim_lease = \"2s\"\n", s.addr))
		mbox := filepath.Join(e.dir, "a.mbox")
		writeMbox(t, mbox, testmail.Archive(40, 7))
		cmd := exec.Command(binary, "-config", e.config, "import", "mbox", mbox)
		cmd.Dir = e.dir
		cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "five notifications recorded as sent and two in flight", func() bool {
			sent := 0
			for _, r := range e.outbox(t) {
				if r.Status == "sent" {
					sent++
				}
			}
			s.mu.Lock()
			seen := len(s.seen)
			s.mu.Unlock()
			return sent == 5 && seen == 7
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		mu.Lock()
		killed = true
		mu.Unlock()
		close(gate)
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		total := len(e.outbox(t))
		if total < 20 {
			t.Fatalf("only %d notifications queued; the archive should make many more", total)
		}

		srv := exec.Command(binary, "-config", e.config, "serve")
		srv.Dir = e.dir
		srv.Env = append(os.Environ(), "TRACKERD_CONFIG=")
		var stderr testenv.Buffer
		srv.Stderr = &stderr
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { srv.Process.Kill(); srv.Wait() }()
		waitUntil(t, "serve to send every notification", func() bool {
			for _, r := range e.outbox(t) {
				if r.Status != "sent" {
					return false
				}
			}
			return true
		})
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()

		type key struct{ to, id string }
		accepted := map[key]int{}
		for _, m := range s.mails() {
			accepted[key{strings.ToLower(m.to), m.header("Message-ID")}]++
		}
		if len(accepted) != total {
			t.Errorf("%d distinct notifications accepted, want %d", len(accepted), total)
		}
		for k, c := range accepted {
			if c != 1 {
				t.Errorf("%s got %s %d times", k.to, k.id, c)
			}
		}
		s.mu.Lock()
		seen := append([]sunkMail(nil), s.seen...)
		s.mu.Unlock()
		resent := 0
		for _, m := range seen[5:7] { // the two in flight at the kill
			if accepted[key{strings.ToLower(m.to), m.header("Message-ID")}] != 1 {
				t.Errorf("the in-flight mail to %s (%s) was not resent with the same Message-ID", m.to, m.header("Message-ID"))
			}
			resent++
		}
		if len(seen) != total+resent {
			t.Errorf("the relay saw %d mails for %d notifications; only the %d in flight may come twice", len(seen), total, resent)
		}
	})
}

// BenchmarkNotifySmtpSink measures the whole binary sending notifications
// from the outbox to postfix's smtp-sink: `import mbox` of a generated
// archive (TRACKERD_BENCH_MAILS mails, default 10,000: about two
// notifications each) files everything, then its flush sends the queue
// through the relay; the figure is notifications/s of that flush, as
// import reports it.
//
//	go test ./cmd/trackerd -run '^$' -bench NotifySmtpSink -benchtime 1x
func BenchmarkNotifySmtpSink(b *testing.B) {
	path := testenv.Command(b, "smtp-sink", "postfix")
	n := 10000
	if s := os.Getenv("TRACKERD_BENCH_MAILS"); s != "" {
		fmt.Sscan(s, &n)
	}
	mails := testmail.Archive(n, 1)
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		addr := testenv.FreePort(b)
		args := []string{"-c", addr, "1024"}
		if os.Geteuid() == 0 {
			args = append([]string{"-u", "nobody"}, args...)
		}
		sink := exec.Command(path, args...)
		if err := sink.Start(); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			} else if time.Now().After(deadline) {
				b.Fatalf("smtp-sink: %v", err)
			}
		}
		cfg := filepath.Join(dir, "trackerd.toml")
		writeConfig(b, cfg, fmt.Sprintf("[smtp]\nlisten = \"\"\n[web]\nlisten = \"\"\n[log]\nlevel = \"warn\"\n[outgoing]\nrelay = \"smtp://%s\"\n", addr))
		mbox := filepath.Join(dir, "a.mbox")
		writeMbox(b, mbox, mails)
		imp := exec.Command(binary, "-config", cfg, "import", "mbox", mbox)
		imp.Dir = dir
		imp.Env = append(os.Environ(), "TRACKERD_CONFIG=")
		outb, err := imp.CombinedOutput()
		sink.Process.Kill()
		sink.Wait()
		out := string(outb)
		if err != nil {
			b.Fatalf("import: %v\n%s", err, out)
		}
		var sent int
		var secs float64
		for _, line := range strings.Split(out, "\n") {
			if _, err := fmt.Sscanf(line, "sent %d notifications and replies in %fs", &sent, &secs); err == nil {
				break
			}
		}
		if sent == 0 || secs == 0 {
			b.Fatalf("import did not report what it sent:\n%s", out)
		}
		b.ReportMetric(float64(sent), "notifications")
		b.ReportMetric(float64(sent)/secs, "notifications/s")
	}
}
