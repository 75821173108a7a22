package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/store"
)

// testConfig is the default config with edit applied, validated.
func testConfig(t testing.TB, edit func(*config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Tracker.Name = "Test Tracker"
	cfg.Tracker.Address = "tracker@example.net"
	cfg.Tracker.WebURL = "https://issues.example.net/"
	cfg.Tracker.DataDir = t.TempDir()
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// newTestServer serves the web view over st on a local port.
func newTestServer(t testing.TB, st *store.Store, cfg *config.Config) *httptest.Server {
	t.Helper()
	s, err := New(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// deliver files a raw mail through the real gateway.
func deliver(t testing.TB, g *mailgw.Gateway, raw string) mailgw.Result {
	t.Helper()
	r, err := g.Deliver(t.Context(), mailgw.Mail{Raw: []byte(strings.ReplaceAll(raw, "\n", "\r\n")), Source: "test"})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if r.Status != store.InboundFiled {
		t.Fatalf("Deliver: %s (%s), want filed", r.Status, r.Reason)
	}
	return r
}

// attachment is one part of a multipart test mail.
type attachment struct {
	name, typ string
	data      []byte
}

// multipartMail builds a mail with a text body and attachments.
func multipartMail(headers, body string, atts ...attachment) string {
	var b strings.Builder
	b.WriteString(headers)
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BOUNDARY\"\n\n--BOUNDARY\nContent-Type: text/plain; charset=utf-8\n\n")
	b.WriteString(body)
	b.WriteString("\n")
	for _, a := range atts {
		fmt.Fprintf(&b, "--BOUNDARY\nContent-Type: %s; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\nContent-Transfer-Encoding: base64\n\n", a.typ, a.name, a.name)
		enc := base64.StdEncoding.EncodeToString(a.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\n")
	}
	b.WriteString("--BOUNDARY--\n")
	return b.String()
}

// response is what a test request got.
type response struct {
	status int
	header http.Header
	body   string
}

func get(t testing.TB, url string) response {
	t.Helper()
	return do(t, http.MethodGet, url, "", nil)
}

func do(t testing.TB, method, url, user string, body io.Reader, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		name, pw, _ := strings.Cut(user, ":")
		req.SetBasicAuth(name, pw)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// mustGet fetches url and fails unless the status is want.
func mustGet(t testing.TB, url string, want int) response {
	t.Helper()
	r := get(t, url)
	if r.status != want {
		t.Fatalf("GET %s: status %d, want %d\n%s", url, r.status, want, r.body)
	}
	return r
}

// parseHTML parses a page and fails the test if it is not HTML.
func parseHTML(t testing.TB, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

// walk calls f for every element node under n.
func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// attr returns n's attribute key.
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text content of n.
func textOf(n *html.Node) string {
	var b bytes.Buffer
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return b.String()
}

// findAll returns the elements under n that match.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	walk(n, func(e *html.Node) {
		if match(e) {
			out = append(out, e)
		}
	})
	return out
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// byClass matches elements of tag (any tag for "") carrying class.
func byClass(tag, class string) func(*html.Node) bool {
	return func(n *html.Node) bool { return (tag == "" || n.Data == tag) && hasClass(n, class) }
}

// assertNoInjection fails if the document holds any script element, any
// event-handler attribute, or an element a payload would have created.
func assertNoInjection(t testing.TB, where string, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Data == "script" || n.Data == "iframe" || n.Data == "object" || n.Data == "embed" {
			t.Errorf("%s: a <%s> element exists", where, n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("%s: <%s> has an event handler attribute %s=%q", where, n.Data, a.Key, a.Val)
			}
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
				t.Errorf("%s: <%s %s=%q> is a javascript: URL", where, n.Data, a.Key, a.Val)
			}
			if a.Key == "data-pwned" || a.Key == "id" && a.Val == "pwned" {
				t.Errorf("%s: an injected element <%s %s=%q> exists", where, n.Data, a.Key, a.Val)
			}
		}
		if n.Data == "img" && (attr(n, "src") == "x" || strings.HasPrefix(attr(n, "src"), "http")) {
			t.Errorf("%s: an injected <img src=%q> exists", where, attr(n, "src"))
		}
	})
}

// withoutMessageIDs drops the message_id and in_reply_to fields of a JSON
// document: Message-IDs look like addresses but name mails, not people,
// and DESIGN §3 has them.
func withoutMessageIDs(t testing.TB, body string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	var strip func(v any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "message_id")
			delete(x, "in_reply_to")
			for _, e := range x {
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	// Undo json's HTML escaping, so that the scan sees the text.
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// fullAddressRE matches a full email address.
var fullAddressRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

// assertNoAddress fails if body shows a full address other than the
// tracker's own (and its sub-addresses).
func assertNoAddress(t testing.TB, where, body string) {
	t.Helper()
	if json.Valid([]byte(body)) {
		body = withoutMessageIDs(t, body)
	}
	body = html.UnescapeString(body)
	for _, a := range fullAddressRE.FindAllString(body, -1) {
		if tracker := regexp.MustCompile(`^tracker(\+[0-9]+)?@example\.net$`); tracker.MatchString(a) {
			continue
		}
		t.Errorf("%s shows the full address %q", where, a)
	}
}
