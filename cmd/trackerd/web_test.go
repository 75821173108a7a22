package main

// End-to-end tests of the web view: `trackerd serve` from the built binary
// answers HTTP, on SQLite and on PostgreSQL, with mail filed by `trackerd
// deliver` and notifications spooled by the notifier.

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/testenv"
)

// webConfig writes e's config with the web view on a free port and
// returns the view's base URL.
func webConfig(t *testing.T, e *cliEnv, public bool) string {
	t.Helper()
	addr := testenv.FreePort(t)
	base := "http://" + addr + "/"
	var store string
	if e.opts.Driver == "postgres" {
		store = fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = %q\n", e.opts.DSN)
	}
	writeConfig(t, e.config, fmt.Sprintf("[tracker]\nname = \"E2E Tracker\"\nweb_url = %q\n%s[smtp]\nlisten = \"\"\n[web]\nlisten = %q\npublic = %v\n",
		base, store, addr, public))
	return base
}

// serve starts `trackerd serve` in e and returns when it is ready; the
// process gets SIGTERM (and must exit 0) when the test ends.
func (e *cliEnv) serve(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binary, "-config", e.config, "serve")
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "trackerd ready") {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			cmd.Process.Kill()
			t.Fatalf("serve did not get ready; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("serve did not stop within 30s of SIGTERM")
		}
	})
}

// httpDo makes one request; user is "name:password" for basic auth.
func httpDo(t *testing.T, method, u, user, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		n, p, _ := strings.Cut(user, ":")
		req.SetBasicAuth(n, p)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func httpGet(t *testing.T, u string, want int) string {
	t.Helper()
	code, _, body := httpDo(t, http.MethodGet, u, "", "")
	if code != want {
		t.Fatalf("GET %s: %d, want %d\n%s", u, code, want, body)
	}
	return body
}

// unsubscribeLink waits for a spooled notification to rcpt and returns the
// https/http link of its List-Unsubscribe header.
func unsubscribeLink(t *testing.T, e *cliEnv, rcpt string) string {
	t.Helper()
	dir := filepath.Join(e.dir, "trackerd-data", "outgoing", "new")
	re := regexp.MustCompile(`(?i)List-Unsubscribe:[^\n]*<(https?://[^>]+)>`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				continue
			}
			head, _, _ := strings.Cut(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n")
			head = strings.ReplaceAll(head, "\n ", " ") // unfold
			if !regexp.MustCompile(`(?im)^To:.*` + regexp.QuoteMeta(rcpt)).MatchString(head) {
				continue
			}
			if m := re.FindStringSubmatch(head); m != nil {
				return m[1]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no notification to %s with an http unsubscribe link in %s", rcpt, dir)
	return ""
}

func TestServeWeb(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		base := webConfig(t, e, true)
		e.serve(t)

		if body := httpGet(t, base+"healthz", http.StatusOK); body != "ok\n" {
			t.Errorf("/healthz = %q", body)
		}
		e.mustDeliver(t, msg("Alice Liddell <alice@example.org>", `Paper jam <script>alert(1)</script>`, "w1@example.org",
			"The tray <img src=x onerror=alert(1)> jams.\nCall alice@example.org.\n", "Cc: Bob <bob@example.org>"))
		e.mustDeliver(t, msg("Alice Liddell <alice@example.org>", "Re: [issue1] Paper jam", "w2@example.org", "Still jams.\n",
			"In-Reply-To: <w1@example.org>"))

		index := httpGet(t, base, http.StatusOK)
		for _, want := range []string{`href="/issue/1"`, "Paper jam &lt;script&gt;alert(1)&lt;/script&gt;", "2 messages"} {
			if !strings.Contains(index, want) {
				t.Errorf("index lacks %q", want)
			}
		}
		page := httpGet(t, base+"issue/1", http.StatusOK)
		for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;", "Alice Liddell", "alice@…", "2 people"} {
			if !strings.Contains(page, want) {
				t.Errorf("issue page lacks %q", want)
			}
		}
		for _, body := range []string{index, page} {
			if strings.Contains(body, "<script") || strings.Contains(body, "alice@example.org") || strings.Contains(body, "bob@example.org") {
				t.Errorf("a page carries a script or a full address")
			}
		}
		if !strings.Contains(httpGet(t, base+"?q=jams", http.StatusOK), `href="/issue/1"`) {
			t.Errorf("search for a word of the body does not find the issue")
		}
		var list []contract.Issue
		contract.Decode(t, httpGet(t, base+"api/issues", http.StatusOK), &list)
		if len(list) != 1 || list[0].ID != 1 || list[0].Title != "Paper jam <script>alert(1)</script>" || len(list[0].Nosy) != 2 {
			t.Errorf("/api/issues = %+v", list)
		}
		var d contract.IssueDetail
		contract.Decode(t, httpGet(t, base+"api/issues/1", http.StatusOK), &d)
		if len(d.Messages) != 2 || d.Messages[0].Author != "alice@…" {
			t.Errorf("/api/issues/1 = %+v", d)
		}
		var feed struct {
			XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
			Entries []struct {
				ID string `xml:"id"`
			} `xml:"entry"`
		}
		if err := xml.Unmarshal([]byte(httpGet(t, base+"feed.atom", http.StatusOK)), &feed); err != nil || len(feed.Entries) != 2 {
			t.Errorf("/feed.atom: %v, %d entries", err, len(feed.Entries))
		}
		metrics := httpGet(t, base+"metrics", http.StatusOK)
		for _, want := range []string{"trackerd_issues 1\n", "trackerd_messages 2\n", `trackerd_outbox_mails{status="pending"}`, "trackerd_store_up 1\n"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}

		// Bob was in Cc of the first mail; the reply is notified to him
		// with a List-Unsubscribe link into this web view.
		link := unsubscribeLink(t, e, "bob@example.org")
		if !strings.HasPrefix(link, base+"unsubscribe/") {
			t.Fatalf("unsubscribe link %q is not under %s", link, base)
		}
		nosy := func() string { return strings.Join(e.issue(t, 1).Nosy, ",") }
		form := httpGet(t, link, http.StatusOK)
		if !strings.Contains(form, `<form method="post"`) || nosy() != "alice@example.org,bob@example.org" {
			t.Errorf("GET of the unsubscribe link: no form, or the nosy list changed to %q", nosy())
		}
		code, _, _ := httpDo(t, http.MethodPost, link, "", "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
		if code != http.StatusOK || nosy() != "alice@example.org" {
			t.Errorf("one-click POST: %d; nosy list %q, want bob gone", code, nosy())
		}

		code, hdr, _ := httpDo(t, http.MethodGet, base+"file/1/x", "", "")
		if code != http.StatusNotFound || hdr.Get("Content-Security-Policy") == "" {
			t.Errorf("GET of a missing file: %d, CSP %q", code, hdr.Get("Content-Security-Policy"))
		}
	})
}

func TestServeWebPrivate(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		base := webConfig(t, e, false)
		e.mustRun(t, "user", "add", "alice@example.org", "-name", "Alice")
		e.mustRun(t, "user", "add", "bob@example.org")
		pw := filepath.Join(e.dir, "pw")
		writeConfig(t, pw, "open sesame\n")
		e.mustRun(t, "user", "set", "alice@example.org", "-password-file", pw)
		e.serve(t)
		for _, p := range []string{"", "issue/1", "api/issues", "feed.atom"} {
			for _, cred := range []string{"", "alice:wrong", "bob:"} {
				if code, hdr, _ := httpDo(t, http.MethodGet, base+p, cred, ""); code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("GET /%s as %q: %d, want 401 with a Basic challenge", p, cred, code)
				}
			}
		}
		for _, cred := range []string{"alice:open sesame", "alice@example.org:open sesame"} {
			if code, _, _ := httpDo(t, http.MethodGet, base, cred, ""); code != http.StatusOK {
				t.Errorf("GET / as %q: %d, want 200", cred, code)
			}
		}
		var list []contract.Issue
		_, _, body := httpDo(t, http.MethodGet, base+"api/issues?"+url.Values{"status": {"all"}}.Encode(), "alice:open sesame", "")
		contract.Decode(t, body, &list)
		httpGet(t, base+"healthz", http.StatusOK)
	})
}
