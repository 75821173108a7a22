package reply

import (
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkSplitLongQuote runs github/email_reply_parser's 750 KB
// long-quote fixture.
func BenchmarkSplitLongQuote(b *testing.B) {
	body := readFile(b, filepath.Join(corpusDir(b), "reply-text", "erp-github__email_long_quote.txt"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Split(body)
	}
}

// BenchmarkSplitThread is a 1 MB synthetic thread: a top post over
// thousands of nested quotes, attributions and header blocks.
func BenchmarkSplitThread(b *testing.B) {
	var s strings.Builder
	s.WriteString("Thanks, merged.\n\n-- \nBob\n\n")
	for s.Len() < 1<<20 {
		s.WriteString("> On Tue, Mar 1, 2011 at 6:02 PM, Alice <alice@example.org> wrote:\n")
		s.WriteString("> > From: Carol\n> > Sent: Monday\n> > To: Dave\n> > Subject: Re: build\n")
		s.WriteString("> > The build on the main branch has been failing since yesterday, please look.\n>\n")
	}
	body := s.String()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Split(body)
	}
}

// BenchmarkSplitText is 1 MB of plain prose: every line goes through
// every pattern.
func BenchmarkSplitText(b *testing.B) {
	var s strings.Builder
	for s.Len() < 1<<20 {
		s.WriteString("On the other hand the scheduler wrote its state to disk at 12:00 and then:\n")
		s.WriteString("Sent the report to the team, with the numbers from 2011-03-01.\n\n")
	}
	body := s.String()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Split(body)
	}
}

// BenchmarkSplitPathological is 1 MB of one short line repeated, for
// each kind of line that makes the planner look further than the line
// itself (markers, header lines, wrapped-attribution starts, sign-offs).
func BenchmarkSplitPathological(b *testing.B) {
	for _, u := range []struct{ name, line string }{
		{"marker", "-----Original Message-----\n"},
		{"header", "From: a\nTo: b\n"},
		{"attribution-start", "On 1.2.2012 12:00 Bob\n"},
		{"attribution", "On 1.2.2012 12:00, A <a@b.c> wrote:\n"},
		{"verb-and-address", "aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa wrote bob@x.y aaaa:\n"},
		{"dash-name", "-Bob\n\n"},
		{"mobile", "Sent from my iPhone\n"},
		{"rule", "----\n"},
		{"fence", "```\n"},
	} {
		body := strings.Repeat(u.line, (1<<20)/len(u.line))
		b.Run(u.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				Split(body)
			}
		})
	}
}

// BenchmarkStripHTML is 1 MB HTML replies: a top post over a long
// blockquoted thread, a bottom post under 30 000 text-quoted lines, and
// 10 000 inline quote/answer pairs.
func BenchmarkStripHTML(b *testing.B) {
	var top, bottom, inline strings.Builder
	top.WriteString("<html><body><div>Thanks, merged.</div><div>On Tue, Mar 1, 2011 at 6:02 PM, Alice &lt;alice@example.org&gt; wrote:</div><blockquote type=\"cite\">")
	for top.Len() < 1<<20 {
		top.WriteString("<div>The build on the <b>main</b> branch has been failing since yesterday.<br></div>\n")
	}
	top.WriteString("</blockquote></body></html>")
	bottom.WriteString("<div>")
	for bottom.Len() < 1<<20 {
		bottom.WriteString("&gt; the build is failing<br>")
	}
	bottom.WriteString("Fixed.</div>")
	for inline.Len() < 1<<20 {
		inline.WriteString("<p>On 1.2.2012 12:00, A &lt;a@b.c&gt; wrote:</p><blockquote>question</blockquote><p>answer</p>")
	}
	for _, c := range []struct{ name, in string }{
		{"top-post", top.String()}, {"bottom-post", bottom.String()}, {"inline", inline.String()},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				StripHTML(c.in)
			}
		})
	}
}

// BenchmarkSplitSmtpSource is the body postfix's smtp-source sends (and
// BenchmarkSMTPListener imitates): 51 lines of 78 "X". Split runs on every
// mail the listener files, so this is its cost per mail there.
func BenchmarkSplitSmtpSource(b *testing.B) {
	body := strings.Repeat(strings.Repeat("X", 78)+"\n", 51)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Split(body)
	}
}
