package main

// End-to-end tests of the SMTP/LMTP listener: `trackerd serve` from the
// built binary, driven by go-smtp's client and by swaks, on SQLite and on
// PostgreSQL.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/testcert"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
)

// smtpServe is a running `trackerd serve` with the listener on addr.
type smtpServe struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	addr   string
	exited chan error
}

// smtpConfig writes e's config with the listener on a free port (the web
// view off); extra is more TOML for the [smtp] table. It returns the
// listener's address.
func smtpConfig(t *testing.T, e *cliEnv, extra string) string {
	t.Helper()
	addr := testenv.FreePort(t)
	var st string
	if e.opts.Driver == "postgres" {
		st = fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = %q\n", e.opts.DSN)
	}
	writeConfig(t, e.config, fmt.Sprintf("%s[smtp]\nlisten = %q\n%s\n[web]\nlisten = \"\"\n", st, addr, extra))
	return addr
}

// startSMTP starts `trackerd serve` in e and returns once it is ready.
// Unless the test kills it, it gets SIGTERM when the test ends and must
// exit 0.
func startSMTP(t *testing.T, e *cliEnv, addr string) *smtpServe {
	t.Helper()
	cmd := exec.Command(binary, "-config", e.config, "serve")
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	s := &smtpServe{cmd: cmd, stderr: &testenv.Buffer{}, addr: addr, exited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.stderr.String(), "trackerd ready") {
		select {
		case err := <-s.exited:
			t.Fatalf("serve exited before it was ready: %v\nstderr:\n%s", err, s.stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("serve did not get ready within 30s; stderr:\n%s", s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-s.exited:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\nstderr:\n%s", err, s.stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("serve did not stop within 30s of SIGTERM")
		}
		s.exited <- nil
	})
	return s
}

// kill SIGKILLs the process and waits for it.
func (s *smtpServe) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	s.exited <- nil
}

func dialSMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// swaks runs swaks against addr and returns its transcript and exit code.
func swaks(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	path := testenv.Command(t, "swaks", "swaks")
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(path, append([]string{"--server", host, "--port", port, "--helo", "client.example.org"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("swaks: %v", err)
	}
	return string(out), 0
}

// swaksTLS checks that swaks can speak TLS (Debian's libnet-ssleay-perl
// and libio-socket-ssl-perl); without, the test is skipped, and fails in
// CI.
func swaksTLS(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(testenv.Command(t, "swaks", "swaks"), "--support").CombinedOutput()
	if strings.Contains(string(out), "=== TLS supported") {
		return
	}
	testenv.Unavailable(t, "swaks has no TLS (install libnet-ssleay-perl and libio-socket-ssl-perl)\n%s", out)
}

// TestServeSMTP: relay attempts refused, oversize refused with 552, and
// a mail is in `issue list -json` as soon as the 250 is read.
func TestServeSMTP(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		addr := smtpConfig(t, e, "max_message_bytes = 20000")
		srv := startSMTP(t, e, addr)

		// Relay attempts: go-smtp's client and swaks.
		c := dialSMTP(t, addr)
		if _, err := testmail.Send(c, "spammer@example.net", []string{"victim@elsewhere.example"}, msg("spammer@example.net", "Buy", "spam1@example.net", "x")); smtpCode(err) != 550 {
			t.Errorf("relay attempt with go-smtp: %v, want 550", err)
		}
		_ = c.Reset()
		out, code := swaks(t, addr, "--from", "spammer@example.net", "--to", "victim@elsewhere.example")
		if code == 0 || !strings.Contains(out, "<** 550 5.1.1 ") || !strings.Contains(out, "relaying denied") {
			t.Errorf("relay attempt with swaks: exit %d, want a 550 5.1.1 refusal:\n%s", code, out)
		}

		// Oversize: with SIZE declared, and without.
		big := msg("alice@example.org", "Big", "big@example.org", strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\n", 1000))
		if err := c.Mail("alice@example.org", &smtp.MailOptions{Size: int64(len(big))}); smtpCode(err) != 552 {
			t.Errorf("MAIL FROM with SIZE=%d: %v, want 552", len(big), err)
		}
		_ = c.Reset()
		if _, err := testmail.Send(c, "alice@example.org", []string{"tracker@localhost"}, big); smtpCode(err) != 552 {
			t.Errorf("DATA of %d bytes: %v, want 552", len(big), err)
		}
		bigFile := filepath.Join(e.dir, "big.eml")
		writeConfig(t, bigFile, big)
		out, code = swaks(t, addr, "--from", "alice@example.org", "--to", "tracker@localhost", "--data", bigFile)
		if code == 0 || !strings.Contains(out, "<** 552 5.3.4 ") {
			t.Errorf("oversize with swaks: exit %d, want 552 5.3.4:\n%s", code, out)
		}

		// 250, then the issue is there at once.
		out, code = swaks(t, addr, "--from", "alice@example.org", "--to", "tracker@localhost",
			"--header", "Subject: Sent with swaks", "--body", "Hello from swaks.")
		if code != 0 || !strings.Contains(out, "<-  250 2.0.0 filed as issue ") {
			t.Fatalf("swaks mail: exit %d:\n%s", code, out)
		}
		if l := e.issues(t); len(l) != 1 || l[0].Title != "Sent with swaks" {
			t.Errorf("issue list -json right after the 250 = %+v", l)
		}
		reply, err := testmail.Send(c, "bob@example.org", []string{"tracker@localhost"}, msg("Bob <bob@example.org>", "Sent with go-smtp", "gosmtp@example.org", "Hello."))
		if err != nil {
			t.Fatalf("go-smtp mail: %v", err)
		}
		var id int64
		if _, err := fmt.Sscanf(reply, "2.0.0 filed as issue %d", &id); err != nil {
			t.Fatalf("reply %q does not name the issue", reply)
		}
		if d := e.issue(t, id); d.Title != "Sent with go-smtp" || len(d.Messages) != 1 || d.Messages[0].MessageID != "<gosmtp@example.org>" {
			t.Errorf("issue show %d -json right after the 250 = %+v", id, d)
		}
		// Mail to a sub-address of a missing issue is refused at RCPT.
		out, code = swaks(t, addr, "--from", "bob@example.org", "--to", "tracker+999@localhost")
		if code == 0 || !strings.Contains(out, "there is no issue 999") {
			t.Errorf("RCPT to a missing issue with swaks: exit %d:\n%s", code, out)
		}
		for _, key := range []string{"conn_id=", "remote=127.0.0.1:", "message_id=<gosmtp@example.org>", fmt.Sprintf("issue_id=%d", id)} {
			if !strings.Contains(srv.stderr.String(), key) {
				t.Errorf("serve's log has no %s:\n%s", key, srv.stderr.String())
			}
		}
	})
}

// TestServeSMTPConcurrent: 200 mails over 10 concurrent connections are
// all stored, exactly once.
func TestServeSMTPConcurrent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		addr := smtpConfig(t, e, "")
		startSMTP(t, e, addr)
		const conns, perConn = 10, 20
		var wg sync.WaitGroup
		errs := make(chan error, conns*perConn)
		for i := range conns {
			wg.Go(func() {
				c, err := smtp.Dial(addr)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				for j := range perConn {
					from := fmt.Sprintf("user%d@example.org", i)
					if _, err := testmail.Send(c, from, []string{"tracker@localhost"},
						msg(from, fmt.Sprintf("Mail %d.%d", i, j), fmt.Sprintf("c%d.%d@example.org", i, j), "Body.")); err != nil {
						errs <- fmt.Errorf("mail %d.%d: %w", i, j, err)
					}
				}
				_ = c.Quit()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		titles := map[string]int{}
		for _, is := range e.issues(t) {
			titles[is.Title]++
		}
		if len(titles) != conns*perConn {
			t.Errorf("%d distinct issues, want %d", len(titles), conns*perConn)
		}
		for title, n := range titles {
			if n != 1 {
				t.Errorf("issue %q filed %d times", title, n)
			}
		}
		var in []inboundRowJSON
		contract.Decode(t, e.mustRun(t, "inbound", "list", "-json"), &in)
		filed := 0
		for _, r := range in {
			if r.Status == "filed" && r.Source == "smtp" {
				filed++
			}
		}
		if len(in) != conns*perConn || filed != conns*perConn {
			t.Errorf("inbound: %d rows, %d filed from smtp; want %d of each", len(in), filed, conns*perConn)
		}
	})
}

// TestServeSMTPKill: SIGKILL right after each 250 loses nothing: every
// acknowledged mail is there after a restart.
func TestServeSMTPKill(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		addr := smtpConfig(t, e, "")
		const rounds = 3
		for i := range rounds {
			srv := startSMTP(t, e, addr)
			c := dialSMTP(t, addr)
			reply, err := testmail.Send(c, "kim@example.org", []string{"tracker@localhost"},
				msg("kim@example.org", fmt.Sprintf("Killed %d", i), fmt.Sprintf("kill%d@example.org", i), "Still here?"))
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			srv.kill(t) // at once after reading the 250
			if !strings.HasPrefix(reply, "2.0.0 filed as issue ") {
				t.Fatalf("round %d: reply %q", i, reply)
			}
		}
		startSMTP(t, e, addr) // the restart: open the store, recover
		l := e.issues(t)
		if len(l) != rounds {
			t.Fatalf("%d issues after %d acknowledged mails and SIGKILLs: %+v", len(l), rounds, l)
		}
		for i, is := range l {
			if want := fmt.Sprintf("Killed %d", i); is.Title != want {
				t.Errorf("issue %d: title %q, want %q", i, is.Title, want)
			}
		}
	})
}

// TestServeSMTPStartTLS: with a certificate configured, STARTTLS is
// offered and mail goes through it (go-smtp's client, verifying the
// certificate, and swaks).
func TestServeSMTPStartTLS(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		certFile, keyFile, pool := testcert.Files(t, t.TempDir())
		addr := smtpConfig(t, e, fmt.Sprintf("tls_cert = %q\ntls_key = %q", certFile, keyFile))
		startSMTP(t, e, addr)
		c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		defer c.Close()
		if _, err := testmail.Send(c, "lee@example.org", []string{"tracker@localhost"}, msg("lee@example.org", "Over TLS", "tls1@example.org", "Encrypted.")); err != nil {
			t.Fatalf("mail after STARTTLS: %v", err)
		}
		if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
			t.Fatalf("the mail did not go over TLS")
		}
		swaksTLS(t)
		out, code := swaks(t, addr, "--tls", "--from", "lee@example.org", "--to", "tracker@localhost",
			"--header", "Subject: Over TLS with swaks", "--body", "Encrypted too.")
		if code != 0 || !strings.Contains(out, "<-  220 2.0.0 Ready to start TLS") || !strings.Contains(out, "<~  250 2.0.0 filed as issue ") {
			t.Errorf("swaks --tls: exit %d:\n%s", code, out)
		}
		titles := map[string]bool{}
		for _, is := range e.issues(t) {
			titles[is.Title] = true
		}
		if !titles["Over TLS"] || !titles["Over TLS with swaks"] {
			t.Errorf("issues after the TLS mails: %v", titles)
		}
	})
}

// TestServeLMTP: with lmtp = true, one reply per recipient after DATA
// (RFC 2033 §4.2), with swaks and with go-smtp's LMTP client.
func TestServeLMTP(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		addr := smtpConfig(t, e, "lmtp = true")
		startSMTP(t, e, addr)
		out, code := swaks(t, addr, "--protocol", "LMTP", "--from", "max@example.org", "--to", "tracker@localhost,Tracker@LOCALHOST",
			"--header", "Subject: Via LMTP", "--body", "Hello.")
		if code != 0 {
			t.Fatalf("swaks LMTP: exit %d:\n%s", code, out)
		}
		for _, rcpt := range []string{"tracker@localhost", "Tracker@LOCALHOST"} {
			if !strings.Contains(out, "<-  250 2.0.0 <"+rcpt+"> filed as issue ") {
				t.Errorf("no LMTP reply for <%s>:\n%s", rcpt, out)
			}
		}
		// go-smtp's LMTP client: a refused recipient gets no DATA reply,
		// the accepted ones one each.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := smtp.NewClientLMTP(conn)
		defer c.Close()
		if err := c.Hello("client.example.org"); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("max@example.org", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("tracker@localhost", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("tracker+1@localhost", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("nobody@localhost", nil); smtpCode(err) != 550 {
			t.Errorf("RCPT nobody@localhost over LMTP: %v, want 550", err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, msg("max@example.org", "Re: [issue1] Via LMTP", "lmtp2@example.org", "A reply."))
		resp, err := w.CloseWithLMTPResponse()
		if err != nil || len(resp) != 2 || resp["tracker@localhost"] == nil || resp["tracker+1@localhost"] == nil {
			t.Errorf("LMTP replies = %v, %v; want 250 for both accepted recipients", resp, err)
		}
		d := e.issue(t, 1)
		if len(d.Messages) != 2 {
			t.Errorf("issue 1 has %d messages, want 2 (each mail filed once for all its recipients)", len(d.Messages))
		}
	})
}
