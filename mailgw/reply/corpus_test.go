package reply

import (
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"

	"github.com/trackerd/trackerd/internal/corpus"
)

// corpusDir returns the shared fixture corpus (see internal/corpus).
func corpusDir(t testing.TB) string {
	t.Helper()
	return corpus.Dir(t)
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func glob(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// normText is how the score compares texts: line endings to LF, trailing
// spaces and tabs of every line dropped, then surrounding white space
// trimmed (upstream compares String#strip of both sides; the trimmer's
// own output never keeps CR).
func normText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, " \t")
	}
	return strings.TrimSpace(strings.Join(ls, "\n"))
}

// noSpace removes all white space (talon's RE_WHITESPACE comparison).
func noSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

var (
	hiddenRes = []*regexp.Regexp{
		regexp.MustCompile(`(?is)<head\b.*?</head>`),
		regexp.MustCompile(`(?is)<style\b.*?</style>`),
		regexp.MustCompile(`(?is)<script\b.*?</script>`),
		regexp.MustCompile(`(?s)<!--.*?-->`),
	}
	tagRe  = regexp.MustCompile(`(?s)<[^>]*>`)
	bodyRe = regexp.MustCompile(`(?is)<body[^>]*>(.*)</body>`)
)

// htmlText is a test-only tag stripper: drops head, style, script and
// comments, then every tag, then decodes entities.
func htmlText(s string) string {
	for _, re := range hiddenRes {
		s = re.ReplaceAllString(s, "")
	}
	return html.UnescapeString(tagRe.ReplaceAllString(s, " "))
}

// bodyHTML is the inside of <body> if there is one.
func bodyHTML(s string) string {
	if m := bodyRe.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return s
}

// firstTextPart returns the decoded first text/plain part of a message.
func firstTextPart(t testing.TB, raw string) string {
	t.Helper()
	e, err := message.Read(strings.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		t.Fatalf("message.Read: %v", err)
	}
	var found string
	var ok bool
	var walk func(e *message.Entity)
	walk = func(e *message.Entity) {
		if ok {
			return
		}
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
					t.Fatalf("NextPart: %v", err)
				}
				walk(p)
				if ok {
					return
				}
			}
		}
		mt, _, _ := e.Header.ContentType()
		if mt == "" || mt == "text/plain" {
			b, err := io.ReadAll(e.Body)
			if err != nil {
				t.Fatalf("read part: %v", err)
			}
			found, ok = string(b), true
		}
	}
	walk(e)
	if !ok {
		t.Fatal("no text/plain part")
	}
	return found
}

// scoreCase is one expectation shipped by (or documented for) an
// upstream project.
type scoreCase struct {
	set, name string
	got, want string
}

// TestCorpusScore runs every expected output of the corpus and reports
// the share that matches, per source and overall; it fails below 95%.
//
// Sets and comparisons:
//   - trimmer: reply-text/trimmer__*.txt vs .expected-trimmed.txt:
//     Split(strings.TrimSpace(input)).Text == expected, both through
//     normText (LF line endings, trailing spaces per line dropped,
//     surrounding white space trimmed).
//   - talon-signature: reply-text/talon__signature__*_body.txt vs
//     .expected-signature.txt: Split(input).Signature == expected (normText).
//   - talon-replies: the first text/plain part of
//     replies/talon__standard_replies__*.eml: Split(part).Text == "Hello"
//     (normText); where a .expected-reply_text.txt exists it holds talon's
//     reply with the signature kept, so Text + "\n\n" + Signature must
//     equal it (normText). talon__reply-quotations-share-block.eml must
//     keep non-empty text containing no "From" (text/plain via Split,
//     text/html via StripHTML).
//   - talon-html: reply-html/talon__html_replies__*.html: the text of
//     StripHTML(input) with all white space removed ==
//     "Hi.Iamfine.Thanks,Alex"; talon__OLK_SRC_BODY_SECTION.html and
//     talon__reply-separated-by-hr.html: the inside of <body> of the
//     result, white space removed, == "<div>Reply</div>" and
//     "<div>Hi<div>there</div></div>".
func TestCorpusScore(t *testing.T) {
	dir := corpusDir(t)
	var cases []scoreCase

	for _, f := range glob(t, filepath.Join(dir, "reply-text", "trimmer__*.txt")) {
		if strings.Contains(filepath.Base(f), ".expected-") {
			continue
		}
		exp := strings.TrimSuffix(f, ".txt") + ".expected-trimmed.txt"
		if _, err := os.Stat(exp); err != nil {
			continue
		}
		got := Split(strings.TrimSpace(readFile(t, f))).Text
		cases = append(cases, scoreCase{"trimmer", filepath.Base(f), normText(got), normText(readFile(t, exp))})
	}

	for _, f := range glob(t, filepath.Join(dir, "reply-text", "talon__signature__*_body.txt")) {
		exp := strings.TrimSuffix(f, ".txt") + ".expected-signature.txt"
		if _, err := os.Stat(exp); err != nil {
			continue
		}
		got := Split(readFile(t, f)).Signature
		cases = append(cases, scoreCase{"talon-signature", filepath.Base(f), normText(got), normText(readFile(t, exp))})
	}

	for _, f := range glob(t, filepath.Join(dir, "replies", "talon__standard_replies__*.eml")) {
		r := Split(firstTextPart(t, readFile(t, f)))
		got, want := r.Text, "Hello"
		if exp := strings.TrimSuffix(f, ".eml") + ".expected-reply_text.txt"; fileExists(exp) {
			got, want = r.Text, readFile(t, exp)
			if r.Signature != "" {
				got += "\n\n" + r.Signature
			}
		}
		cases = append(cases, scoreCase{"talon-replies", filepath.Base(f), normText(got), normText(want)})
	}
	if f := filepath.Join(dir, "replies", "talon__reply-quotations-share-block.eml"); fileExists(f) {
		raw := readFile(t, f)
		check := func(name, text string) {
			text = strings.TrimSpace(text)
			ok := text != "" && !strings.Contains(text, "From")
			cases = append(cases, scoreCase{"talon-replies", name, fmt.Sprint(ok), "true"})
			if !ok {
				t.Logf("%s: text %q", name, text)
			}
		}
		check("reply-quotations-share-block (text/plain)", Split(firstTextPart(t, raw)).Text)
		check("reply-quotations-share-block (text/html)", htmlText(StripHTML(htmlPart(t, raw))))
	}

	for _, f := range glob(t, filepath.Join(dir, "reply-html", "talon__*.html")) {
		out := StripHTML(readFile(t, f))
		base := filepath.Base(f)
		switch base {
		case "talon__OLK_SRC_BODY_SECTION.html":
			cases = append(cases, scoreCase{"talon-html", base, noSpace(bodyHTML(out)), "<div>Reply</div>"})
		case "talon__reply-separated-by-hr.html":
			cases = append(cases, scoreCase{"talon-html", base, noSpace(bodyHTML(out)), "<div>Hi<div>there</div></div>"})
		default:
			cases = append(cases, scoreCase{"talon-html", base, noSpace(htmlText(out)), noSpace("Hi. I am fine.\n\nThanks,\nAlex")})
		}
	}

	if len(cases) == 0 {
		t.Fatal("no expectations found in the corpus")
	}
	pass := map[string]int{}
	total := map[string]int{}
	var sets []string
	all := 0
	for _, c := range cases {
		if total[c.set] == 0 {
			sets = append(sets, c.set)
		}
		total[c.set]++
		if c.got == c.want {
			pass[c.set]++
			all++
			continue
		}
		t.Logf("MISS %s %s:\n got: %q\nwant: %q", c.set, c.name, c.got, c.want)
	}
	for _, s := range sets {
		line := fmt.Sprintf("reply corpus score %-16s %3d/%-3d %5.1f%%", s, pass[s], total[s], 100*float64(pass[s])/float64(total[s]))
		t.Log(line)
		fmt.Println(line)
	}
	score := 100 * float64(all) / float64(len(cases))
	line := fmt.Sprintf("reply corpus score %-16s %3d/%-3d %5.1f%%", "overall", all, len(cases), score)
	t.Log(line)
	fmt.Println(line)
	if score < 95 {
		t.Errorf("overall score %.1f%% is below 95%%", score)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// htmlPart returns the decoded first text/html part of a message.
func htmlPart(t testing.TB, raw string) string {
	t.Helper()
	e, err := message.Read(strings.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("message.Read: %v", err)
	}
	var out string
	err = e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil {
			return err
		}
		if mt, _, _ := p.Header.ContentType(); mt == "text/html" && out == "" {
			b, err := io.ReadAll(p.Body)
			if err != nil {
				return err
			}
			out = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

// TestCorpusSafety runs Split over every reply-text input and StripHTML
// over every HTML input and checks the contracts that hold for any body:
// no panic, quick, valid UTF-8 out for valid UTF-8 in, and Text made only
// of lines of the input, in order.
func TestCorpusSafety(t *testing.T) {
	dir := corpusDir(t)
	for _, f := range glob(t, filepath.Join(dir, "reply-text", "*.txt")) {
		if strings.Contains(filepath.Base(f), ".expected-") {
			continue
		}
		body := readFile(t, f)
		start := time.Now()
		r := Split(body)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Split(%s) took %v", filepath.Base(f), d)
		}
		if utf8.ValidString(body) {
			for _, part := range []string{r.Text, r.Quoted, r.Signature} {
				if !utf8.ValidString(part) {
					t.Errorf("Split(%s): invalid UTF-8 out of valid UTF-8 in", filepath.Base(f))
				}
			}
		}
		if err := subsequence(r.Text, body); err != nil {
			t.Errorf("Split(%s).Text: %v", filepath.Base(f), err)
		}
	}
	for _, pat := range []string{"reply-html/*.html", "html/*", "replies/*.eml"} {
		for _, f := range glob(t, filepath.Join(dir, pat)) {
			in := readFile(t, f)
			start := time.Now()
			out := StripHTML(in)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("StripHTML(%s) took %v", filepath.Base(f), d)
			}
			if utf8.ValidString(in) && !utf8.ValidString(out) {
				t.Errorf("StripHTML(%s): invalid UTF-8 out of valid UTF-8 in", filepath.Base(f))
			}
			_ = Split(in) // whole messages as bodies: must not panic either
		}
	}
}

// subsequence checks that every line of text is a line of body, in
// order (trailing white space aside: Split trims the end of the text).
func subsequence(text, body string) error {
	if text == "" {
		return nil
	}
	src := splitLines(body)
	j := 0
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		for j < len(src) && strings.TrimRightFunc(src[j], unicode.IsSpace) != l {
			j++
		}
		if j == len(src) {
			return fmt.Errorf("line %q is not in the input (in order)", l)
		}
		j++
	}
	return nil
}
