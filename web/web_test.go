package web

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/store"
)

// The payloads a hostile sender puts into a subject and a body.
const (
	xssTitle = `Printer <script>document.body.setAttribute('data-pwned','1')</script> crashes <img src=x onerror="document.title='pwned'">`
	xssBody  = `The printer crashes <b onmouseover="alert(1)">hard</b><img src=x onerror=alert(1)>.
"><svg onload=alert(1)><a href="javascript:alert(1)">click</a>
See https://example.com/log?id=1 and issue2.
Reach me at alice@example.org or alice.backup@mail.example.org.`
)

const testPatch = `From 1234567 Mon Sep 17 00:00:00 2001
From: Bob Builder <bob@example.org>
Subject: [PATCH] printer: do not crash

---
 printer.c | 3 ++-
 1 file changed, 2 insertions(+), 1 deletion(-)

diff --git a/printer.c b/printer.c
index 1111111..2222222 100644
--- a/printer.c
+++ b/printer.c
@@ -10,3 +10,4 @@ int print(void)
 {
-	return crash();
+	if (ok()) return 0;
+	return 1;
 }
-- 
2.40.0
`

// scenario is a tracker filled through the real gateway.
type scenario struct {
	st                    *store.Store
	cfg                   *config.Config
	g                     *mailgw.Gateway
	url                   string
	printer, scanner, old int64 // issue ids
	reply                 int64 // the id of bob's reply on the printer issue
}

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

func newScenario(t *testing.T, st *store.Store, edit func(*config.Config)) *scenario {
	t.Helper()
	cfg := testConfig(t, func(c *config.Config) {
		c.MailGW.KeepQuotedText = "yes"
		if edit != nil {
			edit(c)
		}
	})
	g := mailgw.New(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), mailgw.Options{})
	sc := &scenario{st: st, cfg: cfg, g: g}

	r := deliver(t, g, multipartMail("From: Alice Liddell <alice@example.org>\nTo: tracker@example.net\nCc: \"carol@example.com\" <carol@example.com>\n"+
		"Subject: "+xssTitle+"\nMessage-ID: <a1@example.org>\n", xssBody+"\n\nAlice\n-- \nAlice Liddell <alice@example.org>\n",
		attachment{"screenshot.png", "image/png", pngBytes},
		attachment{"page.html", "text/html", []byte("<script>alert(1)</script>")},
		attachment{"notes-for-dave@example.org.txt", "text/plain", []byte("hello")}))
	sc.printer = r.IssueID
	r = deliver(t, g, "From: bob@example.org\nTo: tracker@example.net\nSubject: Scanner is slow [priority=urgent;keyword=scanner]\nMessage-ID: <b1@example.org>\n\n/assign me\nIt takes minutes per page.\n")
	sc.scanner = r.IssueID
	r = deliver(t, g, multipartMail("From: Bob Builder <bob@example.org>\nTo: tracker@example.net\nSubject: Re: [issue"+strconv.FormatInt(sc.printer, 10)+"] Printer\n"+
		"Message-ID: <b2@example.org>\nIn-Reply-To: <a1@example.org>\n",
		"Fixed in the attached patch.\n\nOn Mon, 2 Nov 2026, Alice Liddell <alice@example.org> wrote:\n> The printer crashes\n> hard.\n\nBob\n-- \nbob@example.org\n",
		attachment{"fix.patch", "text/x-diff", []byte(testPatch)}))
	sc.reply = r.MsgID
	r = deliver(t, g, "From: carol@example.com\nTo: tracker@example.net\nSubject: Old request\nMessage-ID: <c1@example.com>\n\n/close\nNever mind, carol@example.com found it.\n")
	sc.old = r.IssueID
	sc.url = newTestServer(t, st, cfg).URL
	return sc
}

// indexIDs returns the issue ids an index page lists, in order.
func indexIDs(t *testing.T, body string) []int64 {
	t.Helper()
	var ids []int64
	for _, a := range findAll(parseHTML(t, body), byClass("a", "title")) {
		id, err := strconv.ParseInt(strings.TrimPrefix(attr(a, "href"), "/issue/"), 10, 64)
		if err != nil {
			t.Fatalf("index link %q", attr(a, "href"))
		}
		ids = append(ids, id)
	}
	return ids
}

func TestIndex(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		all := []int64{sc.printer, sc.scanner, sc.old}
		for _, tc := range []struct {
			query string
			want  []int64
		}{
			{"", []int64{sc.printer, sc.scanner}}, // open issues, most recently active first (the reply came later)
			{"status=open", []int64{sc.printer, sc.scanner}},
			{"status=closed", []int64{sc.old}},
			{"status=all&sort=id", all},
			{"status=resolved", []int64{sc.old}},
			{"status=UNREAD,chatting&sort=id", []int64{sc.printer, sc.scanner}},
			{"status=unread", []int64{sc.scanner}},
			{"priority=urgent", []int64{sc.scanner}},
			{"priority=bug&status=all&sort=id", []int64{sc.printer, sc.old}},
			{"keyword=scanner", []int64{sc.scanner}},
			{"keyword=nothing", nil},
			{"assignee=bob", []int64{sc.scanner}},
			{"assignee=-&status=all&sort=id", []int64{sc.printer, sc.old}},
			{"q=printer", []int64{sc.printer}},
			{"q=PATCH+attached", []int64{sc.printer}}, // words of a reply, any case
			{"q=minutes", []int64{sc.scanner}},
			{"q=never+mind&status=all", []int64{sc.old}},
			{"q=never+mind", nil}, // closed: not in the default open view
			{"q=zebra", nil},
			{"status=all&sort=-id", []int64{sc.old, sc.scanner, sc.printer}},
			{"status=all&sort=title", []int64{sc.old, sc.printer, sc.scanner}},
			{"status=all&sort=priority&per_page=1", []int64{sc.scanner}}, // urgent before bug
			{"status=all&sort=id&per_page=1&page=2", []int64{sc.scanner}},
			{"status=all&sort=id&per_page=2&page=2", []int64{sc.old}},
			{"status=all&sort=id&per_page=2&page=3", nil},
		} {
			r := mustGet(t, sc.url+"/?"+tc.query, http.StatusOK)
			if got := indexIDs(t, r.body); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GET /?%s lists %v, want %v", tc.query, got, tc.want)
			}
		}

		// Paging links keep the filters.
		r := mustGet(t, sc.url+"/?status=all&sort=id&per_page=1&page=2", http.StatusOK)
		doc := parseHTML(t, r.body)
		links := map[string]string{}
		for _, a := range findAll(doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "rel") != "" }) {
			links[attr(a, "rel")] = attr(a, "href")
		}
		want := map[string]string{"prev": "/?per_page=1&sort=id&status=all", "next": "/?page=3&per_page=1&sort=id&status=all"}
		if !reflect.DeepEqual(links, want) {
			t.Errorf("pager links = %v, want %v", links, want)
		}
		if !strings.Contains(textOf(doc), "Page 2 of 3") {
			t.Errorf("page 2 of 3 does not say so")
		}

		for _, bad := range []string{"status=bogus", "priority=meh", "sort=color", "page=0", "per_page=1000", "assignee=nobody-at-all"} {
			r := get(t, sc.url+"/?"+bad)
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, `class="notice error"`) {
				t.Errorf("GET /?%s: status %d, want 400 with the problem shown", bad, r.status)
			}
		}

		// The hostile title is shown as text.
		r = mustGet(t, sc.url+"/", http.StatusOK)
		doc = parseHTML(t, r.body)
		assertNoInjection(t, "index", doc)
		titles := findAll(doc, byClass("a", "title"))
		if len(titles) == 0 || !strings.Contains(textOf(titles[0]), "<script>document.body") || !strings.Contains(textOf(titles[0]), `onerror="document.title='pwned'"`) {
			t.Errorf("index: the first title does not show the subject's markup as text")
		}
		if !strings.Contains(r.body, "&lt;script&gt;") {
			t.Errorf("index: the subject's <script> is not escaped")
		}
	})
}

func TestIssuePage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		r := mustGet(t, fmt.Sprintf("%s/issue/%d", sc.url, sc.printer), http.StatusOK)
		doc := parseHTML(t, r.body)
		assertNoInjection(t, "issue page", doc)
		text := textOf(doc)

		h1 := findAll(doc, func(n *html.Node) bool { return n.Data == "h1" })
		if len(h1) != 1 || !strings.Contains(textOf(h1[0]), "<script>document.body.setAttribute") {
			t.Errorf("issue page: h1 does not show the title as text")
		}
		nosy, err := st.NosyCount(t.Context(), sc.printer)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Status", "chatting", "Priority", "bug", "Assigned to", "nobody",
			fmt.Sprintf("%d people", nosy), "Alice Liddell", "Bob Builder", "opened the issue",
			"https://example.com/log?id=1", "alice@…", "alice.backup@…"} {
			if !strings.Contains(text, want) {
				t.Errorf("issue page does not show %q", want)
			}
		}
		if nosy < 3 {
			t.Errorf("nosy count %d: alice, carol and bob should be on it", nosy)
		}
		msgs := findAll(doc, byClass("section", "msg"))
		if len(msgs) != 2 {
			t.Fatalf("issue page shows %d messages, want 2", len(msgs))
		}
		if got := attr(msgs[1], "id"); got != fmt.Sprintf("msg%d", sc.reply) {
			t.Errorf("second message anchor = %q, want msg%d", got, sc.reply)
		}

		// The quote of the reply is folded, with its attribution.
		quotes := findAll(msgs[1], func(n *html.Node) bool { return byClass("details", "quote")(n) && !hasClass(n.Parent, "full") })
		if len(quotes) != 1 || !strings.Contains(textOf(quotes[0]), "> The printer crashes") ||
			!strings.Contains(textOf(quotes[0]), "wrote:") || attr(quotes[0], "open") != "" {
			var got []string
			for _, q := range quotes {
				got = append(got, textOf(q))
			}
			t.Errorf("reply: quoted text is not folded in one closed <details> with its attribution: %q", got)
		}
		if strings.Contains(textOf(msgs[1]), "-- ") && len(findAll(msgs[1], byClass("details", "full"))) == 0 {
			t.Errorf("reply: the cut signature is shown unfolded")
		}

		// Links: URLs and issue designators, nothing else.
		var hrefs []string
		for _, a := range findAll(msgs[0], func(n *html.Node) bool { return n.Data == "a" }) {
			hrefs = append(hrefs, attr(a, "href"))
		}
		for _, want := range []string{"https://example.com/log?id=1", "/issue/2"} {
			if !contains(hrefs, want) {
				t.Errorf("first message links %v, want %s among them", hrefs, want)
			}
		}

		// Attachments: an image shown inline, the others linked, the
		// patch as a coloured diff.
		files := map[string]string{}
		for _, li := range findAll(doc, func(n *html.Node) bool { return n.Data == "li" && n.Parent != nil && hasClass(n.Parent, "files") }) {
			a := findAll(li, func(n *html.Node) bool { return n.Data == "a" })[0]
			files[textOf(a)] = attr(a, "href")
		}
		for _, name := range []string{"screenshot.png", "page.html", "fix.patch"} {
			if !strings.HasPrefix(files[name], "/file/") || !strings.HasSuffix(files[name], "/"+name) {
				t.Errorf("attachment %s links to %q", name, files[name])
			}
		}
		imgs := findAll(doc, func(n *html.Node) bool { return n.Data == "img" })
		if len(imgs) != 1 || attr(imgs[0], "src") != files["screenshot.png"] {
			t.Errorf("issue page images = %d, want the PNG attachment inline", len(imgs))
		}
		rows := map[string][]string{}
		for _, tr := range findAll(doc, func(n *html.Node) bool {
			return n.Data == "tr" && n.Parent != nil && hasClass(n.Parent.Parent, "dtable") || n.Data == "tr" && hasClass(n.Parent, "dtable")
		}) {
			cells := findAll(tr, func(n *html.Node) bool { return n.Data == "td" })
			rows[attr(tr, "class")] = append(rows[attr(tr, "class")], textOf(cells[0])+"|"+textOf(cells[1])+"|"+textOf(cells[2]))
		}
		wantRows := map[string][]string{
			"add":  {"|11|+\tif (ok()) return 0;", "|12|+\treturn 1;"},
			"del":  {"11||-\treturn crash();"},
			"ctx":  {"10|10| {", "12|13| }"},
			"hunk": {"||@@ -10,3 +10,4 @@ int print(void)"},
		}
		for k, want := range wantRows {
			if !reflect.DeepEqual(rows[k], want) {
				t.Errorf("diff rows of class %s = %q, want %q", k, rows[k], want)
			}
		}
		if d := findAll(doc, byClass("div", "dname")); len(d) != 1 || !strings.HasPrefix(textOf(d[0]), "printer.c") {
			t.Errorf("diff file header missing or wrong")
		}

		// History of changes, with who made them.
		hist := findAll(doc, byClass("details", "history"))
		if len(hist) != 1 || !strings.Contains(textOf(hist[0]), "status") {
			t.Errorf("issue page has no change history")
		}
		r = mustGet(t, fmt.Sprintf("%s/issue/%d", sc.url, sc.scanner), http.StatusOK)
		text = textOf(parseHTML(t, r.body))
		for _, want := range []string{"urgent", "scanner", "bob@…", "priority: urgent"} {
			if !strings.Contains(text, want) {
				t.Errorf("scanner issue page does not show %q", want)
			}
		}

		for path, want := range map[string]int{
			"/issue/9999": http.StatusNotFound, "/issue/abc": http.StatusNotFound, "/issue/0": http.StatusNotFound,
			"/issue/01": http.StatusNotFound, "/nowhere": http.StatusNotFound,
		} {
			if r := get(t, sc.url+path); r.status != want || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("GET %s: %d %s, want %d as a page", path, r.status, r.header.Get("Content-Type"), want)
			}
		}
		r = get(t, fmt.Sprintf("%s/issue%d", sc.url, sc.printer))
		if r.status != http.StatusMovedPermanently || r.header.Get("Location") != fmt.Sprintf("/issue/%d", sc.printer) {
			t.Errorf("GET /issueN: %d to %q, want a redirect to /issue/N", r.status, r.header.Get("Location"))
		}
		if r := do(t, http.MethodPost, fmt.Sprintf("%s/issue/%d", sc.url, sc.printer), "", nil); r.status < 400 {
			t.Errorf("POST /issue/N: %d; the view is read-only", r.status)
		}
	})
}

func TestFiles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		r := mustGet(t, fmt.Sprintf("%s/issue/%d", sc.url, sc.printer), http.StatusOK)
		links := map[string]string{}
		for _, li := range findAll(parseHTML(t, r.body), func(n *html.Node) bool { return n.Data == "li" && n.Parent != nil && hasClass(n.Parent, "files") }) {
			a := findAll(li, func(n *html.Node) bool { return n.Data == "a" })[0]
			links[textOf(a)] = attr(a, "href")
		}
		for _, tc := range []struct {
			name, typ, disposition string
			data                   string
		}{
			{"screenshot.png", "image/png", `inline; filename=screenshot.png`, string(pngBytes)},
			{"page.html", "text/html", `attachment; filename=page.html`, "<script>alert(1)</script>"},
			{"fix.patch", "text/x-diff", `attachment; filename=fix.patch`, testPatch},
		} {
			r := mustGet(t, sc.url+links[tc.name], http.StatusOK)
			if r.body != tc.data {
				t.Errorf("%s: body differs from the attachment", tc.name)
			}
			if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, tc.typ) {
				t.Errorf("%s: Content-Type %q, want %s", tc.name, got, tc.typ)
			}
			if got := r.header.Get("Content-Disposition"); got != tc.disposition {
				t.Errorf("%s: Content-Disposition %q, want %q", tc.name, got, tc.disposition)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s: X-Content-Type-Options %q", tc.name, got)
			}
			if !strings.Contains(r.header.Get("Content-Security-Policy"), "sandbox") {
				t.Errorf("%s: no sandbox in the CSP of a file", tc.name)
			}
			// The name in the URL is only for the browser.
			other := strings.TrimSuffix(sc.url+links[tc.name], tc.name) + "other.name"
			if r2 := mustGet(t, other, http.StatusOK); r2.header.Get("Content-Disposition") != tc.disposition {
				t.Errorf("%s under another name: Content-Disposition %q", tc.name, r2.header.Get("Content-Disposition"))
			}
			if r3 := do(t, http.MethodGet, sc.url+links[tc.name], "", nil, "If-None-Match", r.header.Get("ETag")); r3.status != http.StatusNotModified {
				t.Errorf("%s: If-None-Match with its ETag: %d, want 304", tc.name, r3.status)
			}
		}
		// A non-ASCII name and an unusable stored type.
		err := st.CreateFile(t.Context(), &store.File{MessageID: sc.reply, Name: "Überblick\".txt", Type: "text/plain; charset=\"", Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		files, err := st.IssueFiles(t.Context(), sc.printer)
		if err != nil {
			t.Fatal(err)
		}
		last := files[len(files)-1]
		r = mustGet(t, fmt.Sprintf("%s/file/%d/x", sc.url, last.ID), http.StatusOK)
		if r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Content-Disposition") != `attachment; filename*=utf-8''%C3%9Cberblick%22.txt` {
			t.Errorf("odd file: Content-Type %q, Content-Disposition %q", r.header.Get("Content-Type"), r.header.Get("Content-Disposition"))
		}
		for _, p := range []string{"/file/99999/x", "/file/abc/x", "/file/0/x"} {
			if r := get(t, sc.url+p); r.status != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", p, r.status)
			}
		}
	})
}

func TestAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		r := mustGet(t, sc.url+"/api/issues?status=all&sort=id", http.StatusOK)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("/api/issues Content-Type %q", r.header.Get("Content-Type"))
		}
		var list []contract.Issue
		contract.Decode(t, r.body, &list, contract.IssueFields...)
		if len(list) != 3 || list[0].ID != sc.printer || list[1].ID != sc.scanner || list[2].ID != sc.old {
			t.Fatalf("/api/issues?status=all&sort=id = %+v", list)
		}
		if strings.Contains(r.body, `"messages"`) {
			t.Errorf("/api/issues carries messages")
		}
		if r.header.Get("X-Total-Count") != "3" {
			t.Errorf("X-Total-Count = %q, want 3", r.header.Get("X-Total-Count"))
		}
		// Anonymous: same shape, addresses masked.
		assertNoAddress(t, "/api/issues", r.body)
		s := list[1]
		if s.Assignee == nil || *s.Assignee != "bob@…" || s.Priority != "urgent" || !reflect.DeepEqual(s.Keywords, []string{"scanner"}) ||
			!reflect.DeepEqual(s.Nosy, []string{"bob@…"}) || s.Status != "unread" || s.Created.IsZero() {
			t.Errorf("scanner issue = %+v", s)
		}
		if list[0].Assignee != nil || list[0].Keywords == nil {
			t.Errorf("printer issue: assignee %v, keywords %v; want null and []", list[0].Assignee, list[0].Keywords)
		}

		// The same filters and paging as the index.
		r = mustGet(t, sc.url+"/api/issues?status=all&sort=id&per_page=1&page=2", http.StatusOK)
		var page []contract.Issue
		contract.Decode(t, r.body, &page, contract.IssueFields...)
		if len(page) != 1 || page[0].ID != sc.scanner {
			t.Errorf("page 2 of 1 = %+v", page)
		}
		wantLink := `</api/issues?per_page=1&sort=id&status=all>; rel="prev", </api/issues?page=3&per_page=1&sort=id&status=all>; rel="next"`
		if got := r.header.Get("Link"); got != wantLink {
			t.Errorf("Link = %q, want %q", got, wantLink)
		}
		for q, want := range map[string][]int64{"q=minutes": {sc.scanner}, "priority=urgent": {sc.scanner}, "status=closed": {sc.old}, "keyword=none": {}} {
			var got []contract.Issue
			contract.Decode(t, mustGet(t, sc.url+"/api/issues?"+q, http.StatusOK).body, &got)
			ids := []int64{}
			for _, is := range got {
				ids = append(ids, is.ID)
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("/api/issues?%s = %v, want %v", q, ids, want)
			}
		}
		r = get(t, sc.url+"/api/issues?status=bogus")
		var e struct {
			Error string `json:"error"`
		}
		contract.Decode(t, r.body, &e)
		if r.status != http.StatusBadRequest || !strings.Contains(e.Error, "bogus") {
			t.Errorf("/api/issues?status=bogus: %d %q", r.status, e.Error)
		}

		r = mustGet(t, fmt.Sprintf("%s/api/issues/%d", sc.url, sc.printer), http.StatusOK)
		var d contract.IssueDetail
		contract.Decode(t, r.body, &d, append(contract.IssueFields, "messages")...)
		assertNoAddress(t, "/api/issues/N", r.body)
		if d.ID != sc.printer || d.Title != xssTitle || len(d.Messages) != 2 {
			t.Fatalf("/api/issues/%d = %+v", sc.printer, d)
		}
		m := d.Messages[1]
		if m.ID != sc.reply || m.Author != "bob@…" || m.MessageID != "<b2@example.org>" || m.InReplyTo != "<a1@example.org>" ||
			len(m.Files) != 1 || m.Files[0].Name != "fix.patch" || m.Files[0].Type != "text/x-diff" || m.Files[0].Size != int64(len(testPatch)) {
			t.Errorf("reply = %+v", m)
		}
		if !strings.Contains(d.Messages[0].Content, "alice@… or alice.backup@…") {
			t.Errorf("first message content: addresses not masked: %q", d.Messages[0].Content)
		}
		if r := get(t, sc.url+"/api/issues/9999"); r.status != http.StatusNotFound || !strings.Contains(r.body, `"error"`) {
			t.Errorf("/api/issues/9999: %d %s", r.status, r.body)
		}

		// With credentials: the full addresses, the same shapes as
		// `issue show -json` (LoadIssueDetail).
		setPassword(t, st, "bob@example.org", "sesame")
		r = do(t, http.MethodGet, fmt.Sprintf("%s/api/issues/%d", sc.url, sc.printer), "bob:sesame", nil)
		var full contract.IssueDetail
		contract.Decode(t, r.body, &full, append(contract.IssueFields, "messages")...)
		is, err := st.Issue(t.Context(), sc.printer)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := LoadIssueDetail(t.Context(), st, is)
		if err != nil {
			t.Fatal(err)
		}
		refJSON, _ := json.Marshal(ref)
		var want contract.IssueDetail
		contract.Decode(t, string(refJSON), &want)
		if !reflect.DeepEqual(full, want) {
			t.Errorf("authenticated /api/issues/N =\n%+v\nwant (issue show -json)\n%+v", full, want)
		}
		if full.Messages[1].Author != "bob@example.org" {
			t.Errorf("authenticated: author %q, want the full address", full.Messages[1].Author)
		}
	})
}

// setPassword gives the user at addr a password (cheaply hashed).
func setPassword(t *testing.T, st *store.Store, addr, pw string) {
	t.Helper()
	u, err := st.UserByAddress(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	// store.HashPassword's format with 1,000 iterations instead of
	// 600,000, so that tests do not pay the real cost; CheckPassword
	// reads the count from the hash.
	salt := []byte("0123456789abcdef")
	key, err := pbkdf2.Key(sha256.New, pw, salt, 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawStdEncoding
	u.PasswordHash = "pbkdf2-sha256$1000$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key)
	if !store.CheckPassword(u.PasswordHash, pw) {
		t.Fatal("the test's password hash does not check")
	}
	if err := st.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

// Atom is RFC 4287's feed, decoded strictly.
type atomFeedIn struct {
	XMLName xml.Name     `xml:"http://www.w3.org/2005/Atom feed"`
	ID      []string     `xml:"http://www.w3.org/2005/Atom id"`
	Title   []string     `xml:"http://www.w3.org/2005/Atom title"`
	Updated []string     `xml:"http://www.w3.org/2005/Atom updated"`
	Author  []atomAuthor `xml:"http://www.w3.org/2005/Atom author"`
	Link    []atomLinkIn `xml:"http://www.w3.org/2005/Atom link"`
	Entry   []struct {
		ID        []string     `xml:"http://www.w3.org/2005/Atom id"`
		Title     []string     `xml:"http://www.w3.org/2005/Atom title"`
		Updated   []string     `xml:"http://www.w3.org/2005/Atom updated"`
		Published []string     `xml:"http://www.w3.org/2005/Atom published"`
		Author    []atomAuthor `xml:"http://www.w3.org/2005/Atom author"`
		Link      []atomLinkIn `xml:"http://www.w3.org/2005/Atom link"`
		Content   []struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"http://www.w3.org/2005/Atom content"`
	} `xml:"http://www.w3.org/2005/Atom entry"`
}

type atomAuthor struct {
	Name  []string `xml:"http://www.w3.org/2005/Atom name"`
	Email []string `xml:"http://www.w3.org/2005/Atom email"`
}

type atomLinkIn struct {
	Rel  string `xml:"rel,attr"`
	Href string `xml:"href,attr"`
}

// checkAtom decodes a feed strictly and checks RFC 4287 §4.1.1 and
// §4.1.2: one id (an absolute IRI), title and updated (RFC 3339) per feed
// and entry, an author for each entry (or the feed), a self link, and
// content or an alternate link per entry.
func checkAtom(t *testing.T, where, body string) *atomFeedIn {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(body))
	dec.Strict = true
	var f atomFeedIn
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: not well-formed Atom: %v\n%s", where, err, body)
	}
	one := func(what string, v []string) string {
		if len(v) != 1 || strings.TrimSpace(v[0]) == "" {
			t.Errorf("%s: %s appears %d times (want exactly one, non-empty)", where, what, len(v))
			return ""
		}
		return v[0]
	}
	iri := func(what, v string) {
		if u, err := url.Parse(v); err != nil || !u.IsAbs() {
			t.Errorf("%s: %s %q is not an absolute IRI", where, what, v)
		}
	}
	date := func(what, v string) {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			t.Errorf("%s: %s %q is not an RFC 3339 date", where, what, v)
		}
	}
	iri("feed id", one("feed id", f.ID))
	one("feed title", f.Title)
	date("feed updated", one("feed updated", f.Updated))
	self := false
	for _, l := range f.Link {
		iri("link", l.Href)
		self = self || l.Rel == "self"
	}
	if !self {
		t.Errorf("%s: no rel=self link", where)
	}
	ids := map[string]bool{}
	for i, e := range f.Entry {
		w := fmt.Sprintf("entry %d", i)
		id := one(w+" id", e.ID)
		iri(w+" id", id)
		if ids[id] {
			t.Errorf("%s: %s: id %q repeats", where, w, id)
		}
		ids[id] = true
		one(w+" title", e.Title)
		date(w+" updated", one(w+" updated", e.Updated))
		if len(e.Author) == 0 && len(f.Author) == 0 {
			t.Errorf("%s: %s has no author and neither has the feed", where, w)
		}
		for _, a := range append(e.Author, f.Author...) {
			one(w+" author name", a.Name)
			if len(a.Email) > 0 {
				t.Errorf("%s: %s: an author's email is published", where, w)
			}
		}
		if len(e.Content) == 0 {
			alt := false
			for _, l := range e.Link {
				alt = alt || l.Rel == "alternate"
			}
			if !alt {
				t.Errorf("%s: %s has neither content nor an alternate link", where, w)
			}
		}
	}
	return &f
}

func TestFeeds(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		r := mustGet(t, sc.url+"/feed.atom", http.StatusOK)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/atom+xml") {
			t.Errorf("/feed.atom Content-Type %q", r.header.Get("Content-Type"))
		}
		f := checkAtom(t, "/feed.atom", r.body)
		assertNoAddress(t, "/feed.atom", r.body)
		if len(f.Entry) != 4 {
			t.Fatalf("/feed.atom has %d entries, want the 4 messages", len(f.Entry))
		}
		// Newest first: carol's new issue, bob's reply, bob's issue, alice's issue.
		wantTitles := []string{"New issue" + strconv.FormatInt(sc.old, 10) + ": Old request", "Re: issue" + strconv.FormatInt(sc.printer, 10),
			"New issue" + strconv.FormatInt(sc.scanner, 10) + ": Scanner is slow", "New issue" + strconv.FormatInt(sc.printer, 10) + ": Printer <script>"}
		for i, w := range wantTitles {
			if !strings.HasPrefix(f.Entry[i].Title[0], w) {
				t.Errorf("entry %d title %q, want it to start with %q", i, f.Entry[i].Title[0], w)
			}
		}
		if got := f.Entry[1].Link[0].Href; got != fmt.Sprintf("https://issues.example.net/issue/%d#msg%d", sc.printer, sc.reply) {
			t.Errorf("reply entry link %q", got)
		}
		if f.Entry[3].Author[0].Name[0] != "Alice Liddell" || !strings.Contains(f.Entry[3].Content[0].Text, "<b onmouseover") {
			t.Errorf("first entry: author %v, content %q", f.Entry[3].Author, f.Entry[3].Content[0].Text)
		}
		if f.Entry[0].Author[0].Name[0] != "carol@…" {
			t.Errorf("carol's entry author %q, want the masked address", f.Entry[0].Author[0].Name[0])
		}

		r = mustGet(t, fmt.Sprintf("%s/issue/%d/feed.atom", sc.url, sc.printer), http.StatusOK)
		f = checkAtom(t, "issue feed", r.body)
		assertNoAddress(t, "issue feed", r.body)
		if len(f.Entry) != 2 || f.ID[0] != fmt.Sprintf("https://issues.example.net/issue/%d/feed.atom", sc.printer) {
			t.Errorf("issue feed: %d entries, id %q", len(f.Entry), f.ID)
		}
		if r := get(t, sc.url+"/issue/9999/feed.atom"); r.status != http.StatusNotFound {
			t.Errorf("feed of a missing issue: %d", r.status)
		}

		// A feed of an issue without messages is still valid.
		is := &store.Issue{Title: "Silent", Status: "unread", Priority: "bug"}
		if err := st.CreateIssue(t.Context(), is); err != nil {
			t.Fatal(err)
		}
		checkAtom(t, "empty issue feed", mustGet(t, fmt.Sprintf("%s/issue/%d/feed.atom", sc.url, is.ID), http.StatusOK).body)
	})
}

func TestUnsubscribe(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		ctx := t.Context()
		alice, err := st.UserByAddress(ctx, "alice@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateToken(ctx, "tok-alice-printer", alice.ID, sc.printer); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateBounceToken(ctx, "bounce-alice", alice.ID, sc.printer); err != nil {
			t.Fatal(err)
		}
		on := func() bool {
			on, err := st.OnNosy(ctx, sc.printer, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			return on
		}
		if !on() {
			t.Fatal("alice is not on the nosy list to begin with")
		}
		u := sc.url + "/unsubscribe/tok-alice-printer"

		// GET and HEAD (link scanners, previews) change nothing.
		for range 2 {
			r := mustGet(t, u, http.StatusOK)
			doc := parseHTML(t, r.body)
			forms := findAll(doc, func(n *html.Node) bool { return n.Data == "form" && attr(n, "method") == "post" })
			if len(forms) != 1 || attr(forms[0], "action") != "/unsubscribe/tok-alice-printer" ||
				len(findAll(forms[0], func(n *html.Node) bool { return n.Data == "button" })) != 1 {
				t.Errorf("GET unsubscribe: no POST form with a button")
			}
			if !strings.Contains(textOf(doc), "Alice Liddell") || !strings.Contains(textOf(doc), fmt.Sprintf("issue%d", sc.printer)) {
				t.Errorf("GET unsubscribe does not say who and which issue")
			}
			assertNoAddress(t, "unsubscribe page", r.body)
		}
		do(t, http.MethodHead, u, "", nil)
		if !on() {
			t.Fatal("GET/HEAD /unsubscribe took alice off the nosy list")
		}

		// RFC 8058 one-click POST.
		r := do(t, http.MethodPost, u, "", strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
		if r.status != http.StatusOK || !strings.Contains(r.body, "no longer receives mail") {
			t.Errorf("one-click POST: %d\n%s", r.status, r.body)
		}
		if on() {
			t.Fatal("POST /unsubscribe left alice on the nosy list")
		}
		// Again: nothing to do, still fine; the GET page offers no button.
		r = do(t, http.MethodPost, u, "", strings.NewReader(url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		if r.status != http.StatusOK || !strings.Contains(r.body, "nothing to do") {
			t.Errorf("second POST: %d\n%s", r.status, r.body)
		}
		if strings.Contains(mustGet(t, u, http.StatusOK).body, "<form method=\"post\"") {
			t.Errorf("GET after unsubscribing still offers the button")
		}
		// Other people stay.
		if n, _ := st.NosyCount(ctx, sc.printer); n < 2 {
			t.Errorf("nosy list has %d people left, want bob and carol", n)
		}

		// A bounce token, or no token, unsubscribes nobody.
		for _, bad := range []string{"bounce-alice", "nonsense"} {
			if r := get(t, sc.url+"/unsubscribe/"+bad); r.status != http.StatusNotFound {
				t.Errorf("GET /unsubscribe/%s: %d, want 404", bad, r.status)
			}
			if r := do(t, http.MethodPost, sc.url+"/unsubscribe/"+bad, "", nil); r.status != http.StatusNotFound {
				t.Errorf("POST /unsubscribe/%s: %d, want 404", bad, r.status)
			}
		}

		// A token tied to no issue takes the person off every list.
		bob, err := st.UserByAddress(ctx, "bob@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateToken(ctx, "tok-bob-all", bob.ID, 0); err != nil {
			t.Fatal(err)
		}
		if r := mustGet(t, sc.url+"/unsubscribe/tok-bob-all", http.StatusOK); !strings.Contains(r.body, "every nosy list") {
			t.Errorf("GET of an all-issues token does not say so")
		}
		r = do(t, http.MethodPost, sc.url+"/unsubscribe/tok-bob-all", "", nil)
		if r.status != http.StatusOK || !strings.Contains(r.body, "taken off 2 nosy lists") {
			t.Errorf("POST of an all-issues token: %d\n%s", r.status, r.body)
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		r := mustGet(t, sc.url+"/healthz", http.StatusOK)
		if r.body != "ok\n" {
			t.Errorf("/healthz = %q", r.body)
		}
		rows, err := st.ListOutbox(t.Context(), store.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, o := range rows {
			if o.Status == store.OutboxPending {
				pending++
			}
		}
		if pending == 0 {
			t.Fatal("the scenario queued no notifications")
		}
		r = mustGet(t, sc.url+"/metrics", http.StatusOK)
		for _, want := range []string{
			fmt.Sprintf("trackerd_outbox_mails{status=\"pending\"} %d\n", pending),
			"trackerd_outbox_mails{status=\"sent\"} 0\n",
			"trackerd_outbox_mails{status=\"failed\"} 0\n",
			"trackerd_inbound_mails{status=\"filed\"} 4\n",
			"trackerd_issues 3\n",
			"trackerd_messages 4\n",
			"trackerd_store_up 1\n",
			`trackerd_mails_received_total{source="test"}`,
			`trackerd_mails_processed_total{source="test",status="filed"}`,
			`trackerd_ingest_seconds_bucket{source="test",le="`,
			"# TYPE trackerd_send_seconds histogram",
			"go_goroutines ",
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		// Sent rows are counted from the store at scrape time.
		if err := st.MarkSent(t.Context(), rows[0].ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		r = mustGet(t, sc.url+"/metrics", http.StatusOK)
		if !strings.Contains(r.body, "trackerd_outbox_mails{status=\"sent\"} 1\n") {
			t.Errorf("/metrics does not count the sent row")
		}
	})
}

// TestNoFullAddress fetches every page a visitor can reach and checks that
// no full address appears, only the tracker's own.
func TestNoFullAddress(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		alice, _ := st.UserByAddress(t.Context(), "alice@example.org")
		if err := st.CreateToken(t.Context(), "tok", alice.ID, sc.printer); err != nil {
			t.Fatal(err)
		}
		paths := []string{"/", "/?status=all", "/?q=printer", "/?status=all&sort=title", "/feed.atom", "/api/issues?status=all",
			"/unsubscribe/tok", "/nowhere", "/?assignee=alice@example.org"}
		for _, id := range []int64{sc.printer, sc.scanner, sc.old} {
			paths = append(paths, fmt.Sprintf("/issue/%d", id), fmt.Sprintf("/issue/%d/feed.atom", id), fmt.Sprintf("/api/issues/%d", id))
		}
		seen := 0
		for _, p := range paths {
			r := get(t, sc.url+p)
			if r.status >= 500 {
				t.Errorf("GET %s: %d", p, r.status)
			}
			assertNoAddress(t, p, r.body)
			seen += strings.Count(r.body, "@…")
		}
		if seen == 0 {
			t.Errorf("no masked address anywhere: the test reached no address at all")
		}
		// The raw material did hold full addresses.
		d, _ := st.Messages(t.Context(), sc.printer)
		if !strings.Contains(d[0].Content, "alice@example.org") {
			t.Errorf("the scenario's message holds no address to hide")
		}
	})
}

func TestSecurityHeaders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		for _, p := range []string{"/", fmt.Sprintf("/issue/%d", sc.printer), "/feed.atom", "/api/issues", "/healthz", "/metrics", "/nowhere", "/static/style.css"} {
			r := get(t, sc.url+p)
			csp := r.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no nosniff", p)
			}
		}
		// The page links its stylesheet, which is served.
		doc := parseHTML(t, mustGet(t, sc.url+"/", http.StatusOK).body)
		links := findAll(doc, func(n *html.Node) bool { return n.Data == "link" && attr(n, "rel") == "stylesheet" })
		if len(links) != 1 {
			t.Fatalf("index has %d stylesheets", len(links))
		}
		r := mustGet(t, sc.url+attr(links[0], "href"), http.StatusOK)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
			t.Errorf("stylesheet: %s, %s", r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
		}
		viewport := findAll(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "name") == "viewport" })
		if len(viewport) != 1 || !strings.Contains(attr(viewport[0], "content"), "width=device-width") {
			t.Errorf("index has no mobile viewport")
		}
	})
}

func TestPrivateView(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, func(c *config.Config) { c.Web.Public = false })
		setPassword(t, st, "alice@example.org", "correct horse")
		alice, _ := st.UserByAddress(t.Context(), "alice@example.org")
		if err := st.CreateToken(t.Context(), "tok", alice.ID, sc.printer); err != nil {
			t.Fatal(err)
		}
		protected := []string{"/", fmt.Sprintf("/issue/%d", sc.printer), "/feed.atom", "/api/issues", fmt.Sprintf("/api/issues/%d", sc.printer), "/file/1/x"}
		for _, p := range protected {
			for _, cred := range []string{"", "alice:wrong", "bob:", "carol@example.com:x", "nobody:x"} {
				r := do(t, http.MethodGet, sc.url+p, cred, nil)
				if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Basic realm="Test Tracker"`) {
					t.Errorf("GET %s with %q: %d, WWW-Authenticate %q; want 401", p, cred, r.status, r.header.Get("WWW-Authenticate"))
				}
				if strings.Contains(r.body, "Printer") {
					t.Errorf("GET %s with %q: the 401 page shows an issue", p, cred)
				}
			}
			for _, cred := range []string{"alice:correct horse", "ALICE@example.org:correct horse"} {
				if r := do(t, http.MethodGet, sc.url+p, cred, nil); r.status != http.StatusOK {
					t.Errorf("GET %s as %q: %d, want 200", p, cred, r.status)
				}
			}
		}
		// Logged in, the page names the viewer; still no addresses.
		r := do(t, http.MethodGet, fmt.Sprintf("%s/issue/%d", sc.url, sc.printer), "alice:correct horse", nil)
		if !strings.Contains(r.body, `<span class="viewer">Alice Liddell</span>`) {
			t.Errorf("private page does not name the viewer")
		}
		assertNoAddress(t, "private issue page", r.body)
		// Open routes.
		for _, p := range []string{"/healthz", "/metrics", "/unsubscribe/tok"} {
			if r := get(t, sc.url+p); r.status != http.StatusOK {
				t.Errorf("GET %s without credentials: %d, want 200", p, r.status)
			}
		}
		// A changed password takes effect at once, despite the cache.
		setPassword(t, st, "alice@example.org", "battery staple")
		if r := do(t, http.MethodGet, sc.url+"/", "alice:correct horse", nil); r.status != http.StatusUnauthorized {
			t.Errorf("old password after a change: %d, want 401", r.status)
		}
		if r := do(t, http.MethodGet, sc.url+"/", "alice:battery staple", nil); r.status != http.StatusOK {
			t.Errorf("new password: %d, want 200", r.status)
		}
	})
}
