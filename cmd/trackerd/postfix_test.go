package main

// The Postfix integration test (issue 9, docs/deploy.md): a real Postfix
// on loopback, configured as the guide says, hands mail to trackerd by a
// pipe alias (`trackerd deliver`) and by an LMTP transport to the
// listener; both are filed.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testpostfix"
)

// TestPostfix: Postfix is the MX of tracker.test. Its alias
// tracker@tracker.test pipes into `trackerd deliver` (run by Postfix's
// local(8) as the owner of the alias database: nobody, the owner of the
// tracker's data here); tracker+N@ reaches the same alias (recipient_delimiter). The
// domain lmtp.test goes by LMTP to `trackerd serve`'s listener, its
// recipients rewritten to the tracker's address on the way
// (lmtp_generic_maps). Mail submitted to Postfix by SMTP is filed either
// way, a reply by sub-address lands on its issue, and a refused
// recipient is refused by Postfix at once.
func TestPostfix(t *testing.T) {
	// One directory Postfix's unprivileged processes can traverse, with
	// the binary, the config and the data; trackerd runs as nobody.
	nobody, err := user.Lookup("nobody")
	if err != nil {
		testenv.Unavailable(t, "no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base, err := os.MkdirTemp("/tmp", "tpfx-trackerd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "trackerd")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	lmtpAddr := testenv.FreePort(t)
	cfg := filepath.Join(base, "trackerd.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[tracker]
address = "tracker@tracker.test"
data_dir = %q
[smtp]
listen = %q
lmtp = true
[web]
listen = ""
`, data, lmtpAddr)), 0o644); err != nil {
		t.Fatal(err)
	}

	pf := testpostfix.Start(t, testpostfix.Options{
		MainCF: `mydestination = tracker.test
recipient_delimiter = +
alias_maps = hash:DIR/etc/aliases
local_recipient_maps = $alias_maps
relay_domains = lmtp.test
transport_maps = hash:DIR/etc/transport
lmtp_generic_maps = regexp:DIR/etc/lmtp_generic
`,
		Files: map[string]string{
			"aliases":      fmt.Sprintf("tracker: \"|%s -config %s deliver -from \\\"$SENDER\\\" -to \\\"$ORIGINAL_RECIPIENT\\\"\"\n", bin, cfg),
			"transport":    fmt.Sprintf("lmtp.test lmtp:inet:%s\n", lmtpAddr),
			"lmtp_generic": "/^tracker(\\+.*)?@lmtp\\.test$/ tracker${1}@tracker.test\n",
		},
		Aliases: []string{"aliases"},
		Maps:    []string{"transport"},
	})

	// local(8) runs an alias's command as the owner of the alias
	// database (docs/deploy.md 3.1): the owner of the tracker's data.
	for _, f := range []string{"aliases", "aliases.db"} {
		if err := os.Chown(filepath.Join(pf.Config, f), uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	// trackerd serve as nobody: the listener Postfix's LMTP client talks to.
	srv := exec.Command(bin, "-config", cfg, "serve")
	srv.Dir = base
	srv.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	if os.Geteuid() == 0 {
		srv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	var stderr testenv.Buffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", stderr.String())
		}
	})
	waitUntil(t, "serve ready", func() bool { return strings.Contains(stderr.String(), "trackerd ready") })

	// asNobody runs the CLI as the data's owner.
	asNobody := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-config", cfg}, args...)...)
		cmd.Dir = base
		cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("trackerd %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	submit := func(from, to, raw string) {
		t.Helper()
		c, err := smtp.Dial(pf.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.example.org"); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail(from, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(to, nil); err != nil {
			t.Fatalf("RCPT TO:<%s> at Postfix: %v", to, err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, raw)
		if err := w.Close(); err != nil {
			t.Fatalf("Postfix refused the mail to %s: %v", to, err)
		}
		_ = c.Quit()
	}
	titles := func() map[string]int64 {
		var l []contract.Issue
		contract.Decode(t, asNobody("issue", "list", "-json"), &l)
		m := map[string]int64{}
		for _, is := range l {
			m[is.Title] = is.ID
		}
		return m
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 90s\nPostfix log:\n%s", what, pf.Log())
			}
			pf.Flush(t)
			time.Sleep(500 * time.Millisecond)
		}
	}

	submit("alice@example.org", "tracker@tracker.test", msg("Alice <alice@example.org>", "Through the pipe", "pipe1@example.org", "Postfix piped me."))
	submit("bob@example.org", "tracker@lmtp.test", msg("Bob <bob@example.org>", "Through LMTP", "lmtp1@example.org", "Postfix spoke LMTP."))
	wait("both mails filed", func() bool { m := titles(); return m["Through the pipe"] != 0 && m["Through LMTP"] != 0 })
	ids := titles()

	// Replies by sub-address, one each way.
	pipeIssue, lmtpIssue := ids["Through the pipe"], ids["Through LMTP"]
	submit("carol@example.org", fmt.Sprintf("tracker+%d@tracker.test", lmtpIssue),
		msg("Carol <carol@example.org>", "Re: Through LMTP", "pipe2@example.org", "A reply through the pipe."))
	submit("dave@example.org", fmt.Sprintf("tracker+%d@lmtp.test", pipeIssue),
		msg("Dave <dave@example.org>", "Re: Through the pipe", "lmtp2@example.org", "A reply through LMTP."))
	wait("both replies filed", func() bool {
		var a, b contract.IssueDetail
		contract.Decode(t, asNobody("issue", "show", fmt.Sprint(pipeIssue), "-json"), &a)
		contract.Decode(t, asNobody("issue", "show", fmt.Sprint(lmtpIssue), "-json"), &b)
		return len(a.Messages) == 2 && len(b.Messages) == 2
	})
	// An address the alias table does not know is refused by Postfix
	// itself, at RCPT (local_recipient_maps), never queued.
	c, err := smtp.Dial(pf.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("eve@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("nobody@tracker.test", nil); smtpCode(err) != 550 {
		t.Errorf("RCPT TO:<nobody@tracker.test> at Postfix: %v, want 550", err)
	}
	c.Close()

	var in []inboundRowJSON
	contract.Decode(t, asNobody("inbound", "list", "-json"), &in)
	sources := map[string]string{}
	for _, r := range in {
		if r.Status != "filed" {
			t.Errorf("inbound %d (%s): %s %s", r.ID, r.MessageID, r.Status, r.Reason)
		}
		sources[r.MessageID] = r.Source
	}
	for id, want := range map[string]string{"<pipe1@example.org>": "deliver", "<pipe2@example.org>": "deliver",
		"<lmtp1@example.org>": "lmtp", "<lmtp2@example.org>": "lmtp"} {
		if !strings.HasPrefix(sources[id], want) {
			t.Errorf("%s came in by %q, want %s", id, sources[id], want)
		}
	}
	log := pf.Log()
	for _, want := range []string{"relay=local, delay=", "status=sent (delivered to command: " + bin, "relay=127.0.0.1[127.0.0.1]:" + strings.Split(lmtpAddr, ":")[1]} {
		if !strings.Contains(log, want) {
			t.Errorf("Postfix's log lacks %q:\n%s", want, log)
		}
	}
	if len(in) != 4 {
		t.Errorf("%d inbound rows, want 4", len(in))
	}
}
