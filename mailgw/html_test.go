package mailgw

import (
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"paragraphs", "<p>One</p><p>Two\nlines</p>", "One\n\nTwo lines"},
		{"br", "a<br>b<br/><br>c", "a\nb\n\nc"},
		{"entities", "&lt;a&gt; &amp; &quot;q&quot; &eacute;&nbsp;x &#8364; &#x41;", `<a> & "q" é x € A`},
		{"script style head", "<html><head><title>T</title><style>p{}</style></head><body><script>x()</script>Body</body></html>", "Body"},
		{"unclosed head", "<head><p>Visible anyway", "Visible anyway"},
		{"hidden preheader", `<div style="display:none">hidden</div><p>shown</p>`, "shown"},
		{"unclosed hidden", `<div style="DISPLAY: none">all of it`, "all of it"},
		{"link", `<a href="https://x.org/a">the docs</a>`, "the docs (https://x.org/a)"},
		{"link same as text", `<a href="https://x.org/">https://x.org/</a> <a href="mailto:a@x.org">a@x.org</a>`, "https://x.org/ a@x.org"},
		{"link without text", `<a href="https://x.org/"><img src="x.png"></a>after`, "after"},
		{"javascript link", `<a href="javascript:void(0)">click</a>`, "click"},
		{"ul", "<ul><li>a</li><li>b</li></ul>after", "- a\n- b\n\nafter"},
		{"ol start", `<ol start="9"><li>nine</li><li>ten</li></ol>`, "9. nine\n10. ten"},
		{"nested lists", "<ul><li>a<ol><li>x</li></ol></li></ul>", "- a\n  1. x"},
		{"blockquote", "<p>reply</p><blockquote>quoted<br>text<blockquote>deeper</blockquote></blockquote>", "reply\n\n> quoted\n> text\n>\n> > deeper"},
		{"pre", "<pre>  a\n    b</pre>", "  a\n    b"},
		{"table", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
		{"outlook lines", `<p class=MsoNormal>one<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>three</p>`, "one\n\nthree"},
		{"gmail divs", "<div>one</div><div><br></div><div>three</div>", "one\n\nthree"},
		{"hr", "a<hr>b", "a\n________________________________\nb"},
		{"img alt", `<p>logo: <img alt="ACME" src="cid:x"></p>`, "logo: ACME"},
		{"conditional comments", "<!--[if mso]><p>mso</p><![endif]--><p>all</p>", "all"},
		{"inline spacing", "a<b>b</b> <i>c</i>d", "ab cd"},
		{"invisible chars", "a\u200bb\u00adc", "abc"},
		{"malformed", "<p <b>x</b>><<>", "x><<>"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		if got := HTMLToText(tc.in); got != tc.want {
			t.Errorf("%s: HTMLToText(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestHTMLToTextDeep(t *testing.T) {
	in := strings.Repeat("<blockquote><ul><li><a href='x'>", 5000) + "deep" + strings.Repeat("</a></li></ul></blockquote>", 5000)
	got := HTMLToText(in)
	if !strings.Contains(got, "deep") {
		t.Errorf("deeply nested text lost: %q", truncate(got, 200))
	}
	if len(got) > 2*len(in) {
		t.Errorf("output of %d bytes for %d bytes of deep nesting; prefixes and indents must be capped", len(got), len(in))
	}
}
