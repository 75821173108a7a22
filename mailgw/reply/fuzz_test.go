package reply

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// addCorpusSeeds adds the files matching pattern in the shared corpus as
// seeds, when the corpus is there.
func addCorpusSeeds(f *testing.F, pattern string) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus")
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, p := range files {
		if strings.Contains(p, ".expected-") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) > 64<<10 {
			continue
		}
		f.Add(string(b))
	}
}

// FuzzSplit checks the contracts of Split on any input: no panic, Text
// made only of input lines in input order, valid UTF-8 out of valid
// UTF-8 in.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"",
		"\r",
		"hi\r\n\r\nOn Mon, Apr 2, 2012 at 6:26 PM, A <a@b.c> wrote:\r\n> x\r\n",
		"On 1.2.2012 12:00\nA <a@b.c>\nwrote:\nunquoted",
		"-- \nsig",
		"```\n---\n```",
		"From: a\nSent: 1\nTo: b\nSubject: c\n\nbody",
		"---------- Forwarded message ---------\n",
		"x\n\n-Bob\n",
		"x\n\nJane\nj@x.org\n+1 555 123 4567\n",
	} {
		f.Add(s)
	}
	addCorpusSeeds(f, "reply-text/*.txt")
	f.Fuzz(func(t *testing.T, body string) {
		r := Split(body)
		if err := subsequence(r.Text, body); err != nil {
			t.Fatalf("Split(%q).Text = %q: %v", body, r.Text, err)
		}
		if utf8.ValidString(body) {
			for _, part := range []string{r.Text, r.Quoted, r.Signature} {
				if !utf8.ValidString(part) {
					t.Fatalf("Split(%q): invalid UTF-8 %q", body, part)
				}
			}
		}
	})
}

// FuzzStripHTML checks that StripHTML never panics and keeps valid UTF-8
// valid.
func FuzzStripHTML(f *testing.F) {
	for _, s := range []string{
		"",
		"<div>a<hr>From: x<br>Sent: y<br>To: z<br>Subject: w</div>",
		"<blockquote>x</blockquote>",
		`<div class="gmail_quote">q</div>`,
		`<span id="OLK_SRC_BODY_SECTION">q</span>`,
		"<pre>a\n&gt; b\nc</pre>",
		"<p>On 1.2.2012 12:00, A &lt;a@b.c&gt; wrote:</p><blockquote>q</blockquote>",
	} {
		f.Add(s)
	}
	addCorpusSeeds(f, "reply-html/*.html")
	f.Fuzz(func(t *testing.T, in string) {
		out := StripHTML(in)
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("StripHTML(%q) = %q: invalid UTF-8", in, out)
		}
	})
}
