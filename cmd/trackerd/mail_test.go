package main

// End-to-end tests of the mail gateway through the built binary: mail goes
// in with `trackerd deliver` as an MTA would hand it over, and comes out
// through `issue show -json`, `inbound list -json` and `outbox list -json`.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/corpus"
)

// deliver runs `trackerd deliver args... < raw` and returns the result.
func (e *cliEnv) deliver(t *testing.T, raw string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"-config", e.config, "deliver"}, args...)...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	cmd.Stdin = strings.NewReader(raw)
	out, err := cmd.Output()
	r := result{stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code, r.stderr = ee.ExitCode(), string(ee.Stderr)
	} else if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return r
}

func (e *cliEnv) mustDeliver(t *testing.T, raw string, args ...string) string {
	t.Helper()
	r := e.deliver(t, raw, args...)
	if r.code != 0 {
		t.Fatalf("deliver: exit %d\nstdout: %s\nstderr: %s\nmail:\n%s", r.code, r.stdout, r.stderr, raw)
	}
	return r.stdout
}

// msg builds a small RFC 5322 message. headers are extra "Name: value"
// lines.
func msg(from, subject, id, body string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: Tracker <tracker@localhost>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Fri, 20 Nov 2026 10:00:00 +0000\r\n", from, subject, id)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if !strings.Contains(strings.Join(headers, "\n"), "Content-Type") {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	b.WriteString("\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
	return b.String()
}

func (e *cliEnv) issue(t *testing.T, id int64) contract.IssueDetail {
	t.Helper()
	var d contract.IssueDetail
	contract.Decode(t, e.mustRun(t, "issue", "show", fmt.Sprint(id), "-json"), &d)
	return d
}

func (e *cliEnv) issues(t *testing.T) []contract.Issue {
	t.Helper()
	var l []contract.Issue
	contract.Decode(t, e.mustRun(t, "issue", "list", "-json"), &l)
	return l
}

type inboundRowJSON struct {
	ID        int64     `json:"id"`
	Received  time.Time `json:"received"`
	Source    string    `json:"source"`
	MessageID string    `json:"message_id"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
	IssueID   *int64    `json:"issue_id"`
}

type outboxRowJSON struct {
	ID        int64  `json:"id"`
	IssueID   *int64 `json:"issue_id"`
	Recipient string `json:"recipient"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

func TestMailGateway(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		// A new issue.
		e.mustDeliver(t, msg("Alice Liddell <alice@example.org>", "Printer on fire", "m1@example.org",
			"The printer in room 3 is on fire.\n\n-- \nAlice\n"), "-from", "alice@example.org", "-to", "tracker@localhost")
		l := e.issues(t)
		if len(l) != 1 || l[0].Title != "Printer on fire" || l[0].Status != "unread" || l[0].Priority != "bug" {
			t.Fatalf("after a new mail, issues = %+v", l)
		}
		id := l[0].ID
		d := e.issue(t, id)
		if len(d.Messages) != 1 || d.Messages[0].Content != "The printer in room 3 is on fire." ||
			d.Messages[0].MessageID != "<m1@example.org>" || d.Messages[0].Author != "alice@example.org" {
			t.Fatalf("first message = %+v", d.Messages)
		}
		if strings.Join(d.Nosy, ",") != "alice@example.org" {
			t.Errorf("nosy after the first mail = %v, want the author", d.Nosy)
		}
		var users []userJSON
		contract.Decode(t, e.mustRun(t, "user", "list", "-json"), &users)
		if len(users) != 1 || users[0].RealName != "Alice Liddell" || users[0].Username != "alice" {
			t.Errorf("the unknown sender became %+v, want user alice named Alice Liddell", users)
		}

		// A reply by designator, quoting: the quote is cut, the status moves
		// from unread to chatting, the author joins the nosy list.
		e.mustDeliver(t, msg("bob@example.org", fmt.Sprintf("Re: [issue%d] Printer on fire", id), "m2@example.org",
			"I see it too.\n\nOn Fri, Nov 20, 2026 at 10:00 AM Alice Liddell <alice@example.org> wrote:\n> The printer in room 3 is on fire.\n"))
		d = e.issue(t, id)
		if len(d.Messages) != 2 || d.Messages[1].Content != "I see it too." {
			t.Fatalf("reply by designator: messages = %+v", d.Messages)
		}
		if d.Status != "chatting" || strings.Join(d.Nosy, ",") != "alice@example.org,bob@example.org" {
			t.Errorf("after a reply: status %q nosy %v; want chatting, alice and bob", d.Status, d.Nosy)
		}

		// A reply found by In-Reply-To alone, with an unrelated subject.
		e.mustDeliver(t, msg("carol@example.org", "totally different words", "m3@example.org", "Thread match.",
			"In-Reply-To: <m2@example.org>", "References: <m1@example.org> <m2@example.org>"))
		// A reply to the issue's sub-address.
		e.mustDeliver(t, msg("dave@example.org", "no designator here", "m4@example.org", "Sub-address match."),
			"-to", fmt.Sprintf("tracker+%d@localhost", id))
		d = e.issue(t, id)
		if len(d.Messages) != 4 || d.Messages[2].Content != "Thread match." || d.Messages[2].InReplyTo != "<m2@example.org>" ||
			d.Messages[3].Content != "Sub-address match." {
			t.Fatalf("replies by In-Reply-To and sub-address: messages = %+v", d.Messages)
		}
		if n := len(e.issues(t)); n != 1 {
			t.Errorf("replies created new issues: %d issues", n)
		}

		// Suffix and body commands.
		e.mustDeliver(t, msg("alice@example.org", fmt.Sprintf("Re: [issue%d] Printer on fire [priority=urgent; keyword=+hardware]", id), "m5@example.org",
			"/assign bob@example.org\n/keyword +fire\n\nAssigning this.\n"))
		d = e.issue(t, id)
		if d.Priority != "urgent" || d.Assignee == nil || *d.Assignee != "bob@example.org" ||
			strings.Join(d.Keywords, ",") != "fire,hardware" {
			t.Errorf("after suffix and commands: priority %q assignee %v keywords %v", d.Priority, d.Assignee, d.Keywords)
		}
		if last := d.Messages[len(d.Messages)-1]; last.Content != "Assigning this." {
			t.Errorf("commands were not removed from the text: %q", last.Content)
		}
		e.mustDeliver(t, msg("bob@example.org", "Re: [issue"+fmt.Sprint(id)+"] Printer on fire", "m6@example.org", "/close\n\nFire is out.\n"))
		if d = e.issue(t, id); d.Status != "resolved" {
			t.Errorf("/close: status %q, want resolved", d.Status)
		}

		// The same mail twice: one message.
		again := msg("eve@example.org", fmt.Sprintf("Re: [issue%d] x", id), "m7@example.org", "Only once.")
		e.mustDeliver(t, again)
		if out := e.mustDeliver(t, again); !strings.Contains(out, "ignored") {
			t.Errorf("second delivery of one mail: %q, want ignored as a duplicate", out)
		}
		count := 0
		for _, m := range e.issue(t, id).Messages {
			if m.MessageID == "<m7@example.org>" {
				count++
			}
		}
		if count != 1 {
			t.Errorf("a mail delivered twice was filed %d times", count)
		}
		if d = e.issue(t, id); d.Status != "chatting" {
			t.Errorf("a message on a resolved issue: status %q, want chatting (reopened)", d.Status)
		}

		// An auto-reply and a bounce: archived as ignored, nothing filed.
		before := len(e.issue(t, id).Messages)
		e.mustDeliver(t, msg("alice@example.org", "Out of Office: Printer on fire", "auto1@example.org", "I am away.",
			"Auto-Submitted: auto-replied", "In-Reply-To: <m1@example.org>"))
		dsn := "From: MAILER-DAEMON@mx.example.org\r\nTo: tracker@localhost\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
			"Message-ID: <dsn1@mx.example.org>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nI could not deliver.\r\n" +
			"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
			"--b--\r\n"
		e.mustDeliver(t, dsn, "-from", "")
		if n := len(e.issue(t, id).Messages); n != before {
			t.Errorf("an auto-reply or bounce was filed: %d messages, want %d", n, before)
		}
		if n := len(e.issues(t)); n != 1 {
			t.Errorf("an auto-reply or bounce created an issue: %d issues", n)
		}
		var inbound []inboundRowJSON
		contract.Decode(t, e.mustRun(t, "inbound", "list", "-json", "-status", "ignored"), &inbound)
		ignored := map[string]bool{}
		for _, r := range inbound {
			ignored[r.MessageID] = true
		}
		if !ignored["<auto1@example.org>"] || !ignored["<dsn1@mx.example.org>"] {
			t.Errorf("inbound list -status ignored = %+v, want the auto-reply and the DSN", inbound)
		}

		// An unknown property: rejected, nothing changed, one reply queued
		// to the sender.
		d = e.issue(t, id)
		r := e.deliver(t, msg("frank@example.org", fmt.Sprintf("Re: [issue%d] Printer [colour=red]", id), "bad1@example.org", "Paint it."))
		if r.code != 0 || !strings.Contains(r.stdout, "rejected") {
			t.Errorf("unknown property: exit %d, stdout %q; want 0 and rejected", r.code, r.stdout)
		}
		if after := e.issue(t, id); len(after.Messages) != len(d.Messages) || after.Status != d.Status {
			t.Errorf("a rejected mail changed the issue")
		}
		var outbox []outboxRowJSON
		contract.Decode(t, e.mustRun(t, "outbox", "list", "-json"), &outbox)
		replies := 0
		for _, o := range outbox {
			if o.Recipient == "frank@example.org" {
				replies++
			}
		}
		if replies != 1 {
			t.Errorf("error replies to frank: %d, want 1 (outbox %+v)", replies, outbox)
		}
		spooled, _ := filepath.Glob(filepath.Join(e.dir, "trackerd-data", "outgoing", "new", "*"))
		found := false
		for _, f := range spooled {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), "To: frank@example.org") && strings.Contains(string(b), "colour") {
				found = true
			}
		}
		if !found {
			t.Errorf("no error reply to frank in the outgoing spool (%d files)", len(spooled))
		}
		contract.Decode(t, e.mustRun(t, "user", "list", "-json"), &users)
		for _, u := range users {
			if u.Address == "frank@example.org" {
				t.Errorf("a rejected mail left its sender created as a user")
			}
		}
		var rejected []inboundRowJSON
		contract.Decode(t, e.mustRun(t, "inbound", "list", "-json", "-status", "rejected"), &rejected)
		if len(rejected) != 1 || !strings.Contains(rejected[0].Reason, "colour") {
			t.Fatalf("inbound rejected = %+v, want the colour mail with its reason", rejected)
		}
		// Reprocessing re-runs the rules on the archived bytes: the cause
		// is unchanged, so it stays rejected; a filed mail is left alone.
		if out := e.mustRun(t, "inbound", "reprocess", fmt.Sprint(rejected[0].ID)); !strings.Contains(out, "rejected") {
			t.Errorf("inbound reprocess of the colour mail: %q", out)
		}
		if out := e.mustRun(t, "inbound", "reprocess", "1"); !strings.Contains(out, "already filed") {
			t.Errorf("inbound reprocess of a filed mail: %q", out)
		}
		// The DSN archived with a null sender stays a bounce on reprocess.
		for _, r := range inbound {
			if r.MessageID == "<dsn1@mx.example.org>" {
				if out := e.mustRun(t, "inbound", "reprocess", fmt.Sprint(r.ID)); !strings.Contains(out, "ignored") {
					t.Errorf("inbound reprocess of the DSN: %q", out)
				}
			}
		}

		// Non-UTF-8 and HTML-only mail become clean text.
		latin1 := "From: gus@example.org\r\nTo: tracker@localhost\r\nSubject: =?iso-8859-1?q?Caf=E9?=\r\nMessage-ID: <l1@example.org>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nLe caf\xe9 est froid.\r\n"
		e.mustDeliver(t, latin1)
		html := "From: hal@example.org\r\nTo: tracker@localhost\r\nSubject: HTML only\r\nMessage-ID: <h1@example.org>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>world</b></p><ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>\r\n"
		e.mustDeliver(t, html)
		for _, is := range e.issues(t) {
			switch is.Title {
			case "Café":
				if c := e.issue(t, is.ID).Messages[0].Content; c != "Le café est froid." {
					t.Errorf("latin-1 mail stored as %q", c)
				}
			case "HTML only":
				c := e.issue(t, is.ID).Messages[0].Content
				if !strings.Contains(c, "Hello world") || !strings.Contains(c, "one") || strings.ContainsAny(c, "<>") || strings.Contains(c, "alert") {
					t.Errorf("HTML-only mail stored as %q", c)
				}
			}
		}
		if n := len(e.issues(t)); n != 3 {
			t.Errorf("%d issues, want 3", n)
		}

		// deliver refuses recipients that are not the tracker.
		if r := e.deliver(t, msg("x@example.org", "hi", "x1@example.org", "hi"), "-to", "someone@else.example"); r.code != exitNoUser {
			t.Errorf("deliver -to someone@else.example: exit %d, want %d", r.code, exitNoUser)
		}
	})
}

// TestCorpusThroughDeliver hands every mail of the shared corpus to
// `trackerd deliver`: none may crash, hang or fail, every stored text is
// valid UTF-8 (JSON decoding checks it), and no bounce, auto-reply or
// report is filed.
func TestCorpusThroughDeliver(t *testing.T) {
	dir := corpus.Dir(t)
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".eml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) < 150 {
		t.Fatalf("corpus: %d .eml files, %v", len(files), err)
	}
	e := &cliEnv{dir: t.TempDir()}
	e.config = filepath.Join(e.dir, "trackerd.toml")
	writeConfig(t, e.config, "[smtp]\nlisten = \"\"\n[web]\nlisten = \"\"\n")
	never := map[string]bool{"bounces": true, "auto-replies": true}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		r := e.deliver(t, string(raw)) // a one-minute deadline bounds each
		if r.code != 0 && r.code != exitDataErr {
			t.Errorf("%s: exit %d\n%s", rel, r.code, r.stderr)
			continue
		}
		if never[filepath.Dir(rel)] && strings.HasPrefix(r.stdout, "filed") {
			t.Errorf("%s: a bounce or auto-reply was filed: %s", rel, r.stdout)
		}
	}
	for _, is := range e.issues(t) {
		e.issue(t, is.ID) // strict JSON decoding of every stored text
	}
}
