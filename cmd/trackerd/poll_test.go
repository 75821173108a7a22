package main

// End-to-end tests of the pollers through the built binary: `trackerd
// poll NAME|URL` and `serve` with IDLE and with a cron schedule, against
// a real Dovecot, on SQLite and PostgreSQL; and kill -9 between the
// commit and the after-action.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/testdovecot"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/store"
)

// counts opens the store and returns its messages and filed mails.
func (e *cliEnv) counts(t *testing.T) (messages, filed int) {
	t.Helper()
	st, err := store.Open(context.Background(), e.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Messages, s.Inbound[store.InboundFiled]
}

func (e *cliEnv) wantCounts(t *testing.T, messages, filed int) {
	t.Helper()
	if m, f := e.counts(t); m != messages || f != filed {
		t.Fatalf("store holds %d messages and %d filed mails, want %d and %d", m, f, messages, filed)
	}
}

// pollConfig writes the env's config with [[poll]] entries appended.
func (e *cliEnv) pollConfig(t *testing.T, polls string) {
	t.Helper()
	base, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(base), "\n[[poll]]"); i >= 0 {
		base = base[:i+1]
	}
	writeConfig(t, e.config, string(base)+polls)
}

// passwordFile writes pw to a file in the env's directory.
func (e *cliEnv) passwordFile(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(e.dir, "pass-"+pw)
	writeConfig(t, p, pw+"\n")
	return p
}

// TestPollCommand: `trackerd poll NAME` files 50 mails over IMAP (imaps,
// verified through SSL_CERT_FILE) and POP3 (STLS) and empties the
// mailbox; a second run files nothing; the same mails put back are not
// filed twice; `poll URL` works with -password-file; errors exit 75.
func TestPollCommand(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		d := testdovecot.Start(t, testdovecot.Options{Users: map[string]string{"imapuser": "secret", "popuser": "secret"}})
		t.Setenv("SSL_CERT_FILE", d.CAFile) // Go's x509 trusts it as the system roots
		pw := e.passwordFile(t, "secret")
		e.pollConfig(t, fmt.Sprintf(`
[[poll]]
name = "support"
url = "imaps://imapuser@%s/INBOX"
password_file = %q

[[poll]]
name = "pop"
url = "pop3+starttls://popuser@%s"
password_file = %q
`, d.IMAPS, pw, d.POP3, pw))
		imapMails := testmail.Archive(50, 7)
		popMails := testmail.Fresh(50, "pop")
		d.Append(t, "imapuser", "INBOX", imapMails...)
		d.Append(t, "popuser", "INBOX", popMails...)

		out := e.mustRun(t, "poll", "support")
		if !strings.Contains(out, "support: fetched 50, filed 50") {
			t.Fatalf("poll support printed %q, want 50 fetched and filed", out)
		}
		e.wantCounts(t, 50, 50)
		out = e.mustRun(t, "poll", "pop")
		if !strings.Contains(out, "pop: fetched 50, filed 50") {
			t.Fatalf("poll pop printed %q, want 50 fetched and filed", out)
		}
		e.wantCounts(t, 100, 100)
		for _, user := range []string{"imapuser", "popuser"} {
			if total, _ := d.Count(t, user, "INBOX"); total != 0 {
				t.Fatalf("%s's INBOX holds %d mails after the pass, want 0", user, total)
			}
		}
		if out := e.mustRun(t, "poll", "support"); !strings.Contains(out, "fetched 0") {
			t.Fatalf("second poll support printed %q, want nothing fetched", out)
		}

		// The same mails put back, polled through the URL of the entry.
		d.Append(t, "imapuser", "INBOX", imapMails[:5]...)
		d.Append(t, "popuser", "INBOX", popMails[:5]...)
		if out := e.mustRun(t, "poll", "imaps://imapuser@"+d.IMAPS); !strings.Contains(out, "fetched 5, filed 0, ignored 5 (5 duplicates)") {
			t.Fatalf("poll URL of mails put back printed %q, want 5 duplicates", out)
		}
		if out := e.mustRun(t, "poll", "pop"); !strings.Contains(out, "fetched 5, filed 0, ignored 5 (5 duplicates)") {
			t.Fatalf("poll pop of mails put back printed %q, want 5 duplicates", out)
		}
		e.wantCounts(t, 100, 100)

		// An ad hoc URL with its own password file and after-action.
		d.Append(t, "imapuser", "Other", testmail.Fresh(3, "adhoc")...)
		out = e.mustRun(t, "poll", "imap://imapuser@"+d.IMAP+"/Other", "-password-file", pw, "-after", "flag")
		if !strings.Contains(out, "fetched 3, filed 3") {
			t.Fatalf("poll of an ad hoc URL printed %q, want 3 filed", out)
		}
		if total, seen := d.Count(t, "imapuser", "Other"); total != 3 || seen != 3 {
			t.Fatalf("after -after flag, Other holds %d mails, %d seen; want 3, all seen", total, seen)
		}

		if r := e.run(t, "poll", "nosuch"); r.code != exitUsage || !strings.Contains(r.stderr, "support, pop") {
			t.Errorf("poll nosuch: exit %d, stderr %q; want %d and the configured names", r.code, r.stderr, exitUsage)
		}
		bad := e.passwordFile(t, "wrong")
		r := e.run(t, "poll", "imap://imapuser@"+d.IMAP, "-password-file", bad)
		if r.code != exitTempFail || !strings.Contains(r.stderr, "log in as imapuser") {
			t.Errorf("poll with a wrong password: exit %d, stderr %q; want %d and the login failure", r.code, r.stderr, exitTempFail)
		}
		e.wantCounts(t, 103, 103)
	})
}

// pollServeProc is a running `trackerd serve`.
type pollServeProc struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	done   chan error
}

func startPollServe(t *testing.T, e *cliEnv) *pollServeProc {
	t.Helper()
	cmd := exec.Command(binary, "-config", e.config, "serve")
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	s := &pollServeProc{cmd: cmd, stderr: &testenv.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("serve stderr:\n%s", s.stderr.String())
		}
	})
	pollWait(t, 30*time.Second, "serve ready", func() bool { return strings.Contains(s.stderr.String(), "trackerd ready") })
	return s
}

// stop sends SIGTERM and checks a clean exit.
func (s *pollServeProc) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40s of SIGTERM")
	}
}

func pollWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServePolls: serve runs an IDLE mailbox and a scheduled one beside
// two broken ones (a wrong password, an unreachable server). Mail put
// into the good mailboxes while serve runs is filed (IDLE: within
// seconds; schedule: at its next run); the broken ones log clear lines
// and back off; serve keeps running and stops cleanly.
func TestServePolls(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		d := testdovecot.Start(t, testdovecot.Options{Users: map[string]string{"idleuser": "secret", "cronuser": "secret"}})
		pw := e.passwordFile(t, "secret")
		bad := e.passwordFile(t, "wrong")
		e.pollConfig(t, fmt.Sprintf(`
[[poll]]
name = "idle"
url = "imap://idleuser@%[1]s"
password_file = %[3]q
idle = true

[[poll]]
name = "cron"
url = "pop3s://cronuser@%[2]s"
password_file = %[3]q
schedule = "@every 2s"
insecure_skip_verify = true

[[poll]]
name = "badpass"
url = "imap://cronuser@%[1]s"
password_file = %[4]q
idle = true

[[poll]]
name = "unreachable"
url = "pop3://cronuser@%[5]s"
password_file = %[3]q
schedule = "@every 1s"
`, d.IMAP, d.POP3S, pw, bad, testenv.FreePort(t)))
		s := startPollServe(t, e)
		pollWait(t, 30*time.Second, "the IDLE mailbox's first pass", func() bool {
			return strings.Contains(s.stderr.String(), `msg="polling with IDLE" mailbox=idle`)
		})
		time.Sleep(time.Second) // let the first pass end and IDLE begin

		d.Append(t, "idleuser", "INBOX", testmail.Fresh(5, "idle")...)
		pollWait(t, 30*time.Second, "5 mails filed through IDLE", func() bool { m, _ := e.counts(t); return m == 5 })
		d.Append(t, "cronuser", "INBOX", testmail.Fresh(5, "cron")...)
		pollWait(t, 60*time.Second, "5 mails filed on the schedule", func() bool { m, _ := e.counts(t); return m == 10 })
		d.Append(t, "idleuser", "INBOX", testmail.Fresh(10, "idle2")...)
		pollWait(t, 30*time.Second, "10 more mails filed through IDLE", func() bool { m, _ := e.counts(t); return m == 20 })
		e.wantCounts(t, 20, 20)

		log := s.stderr.String()
		for _, want := range []string{
			`msg="poll failed" mailbox=badpass`, "log in as cronuser",
			`msg="poll failed" mailbox=unreachable`, "connection refused", "retry_in=",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("serve's log lacks %q", want)
			}
		}
		s.stop(t)
	})
}

// TestPollKilled: `trackerd poll` is killed with SIGKILL after its commit
// and before its after-action reached the server (a proxy holds the UID
// STORE or DELE until the kill): the next run files nothing twice and
// empties the mailbox.
func TestPollKilled(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		d := testdovecot.Start(t, testdovecot.Options{})
		pw := e.passwordFile(t, "secret")
		imapProxy := testdovecot.NewProxy(t, d.IMAP)
		popProxy := testdovecot.NewProxy(t, d.POP3)
		e.pollConfig(t, fmt.Sprintf(`
[[poll]]
name = "imap"
url = "imap://tracker@%s"
password_file = %q

[[poll]]
name = "pop"
url = "pop3://tracker@%s"
password_file = %q
`, imapProxy.Addr, pw, popProxy.Addr, pw))
		for i, v := range []struct {
			name  string
			proxy *testdovecot.Proxy
			hold  func(string) bool
		}{
			{"imap", imapProxy, func(l string) bool { return strings.Contains(strings.ToUpper(l), " UID STORE ") }},
			{"pop", popProxy, func(l string) bool { return strings.HasPrefix(strings.ToUpper(l), "DELE ") }},
		} {
			before, _ := e.counts(t)
			d.Append(t, "tracker", "INBOX", testmail.Fresh(30, fmt.Sprintf("kill%d", i))...)
			v.proxy.Hold(v.hold)
			cmd := exec.Command(binary, "-config", e.config, "poll", v.name)
			cmd.Dir = e.dir
			var stderr testenv.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case line := <-v.proxy.Held:
				t.Logf("%s: holding %q", v.name, strings.TrimSpace(line))
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%s: no after-action within 60s; stderr:\n%s", v.name, stderr.String())
			}
			e.wantCounts(t, before+30, before+30) // committed
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			v.proxy.Hold(nil)
			v.proxy.CutAll()
			if total, _ := d.Count(t, "tracker", "INBOX"); total != 30 {
				t.Fatalf("%s: INBOX holds %d mails after the kill, want 30", v.name, total)
			}
			out := e.mustRun(t, "poll", v.name)
			if !strings.Contains(out, "filed 0") || !strings.Contains(out, "acknowledged 30") {
				t.Fatalf("%s: poll after the kill printed %q, want nothing filed and 30 acknowledged", v.name, out)
			}
			e.wantCounts(t, before+30, before+30)
			if total, _ := d.Count(t, "tracker", "INBOX"); total != 0 {
				t.Fatalf("%s: INBOX holds %d mails, want 0", v.name, total)
			}
		}
	})
}
