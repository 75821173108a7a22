package mailgw

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText converts an HTML mail body to readable plain text:
//
//   - paragraphs, headings, tables and other blocks become lines separated
//     by blank lines; <br> is a line break; Outlook's per-line
//     <p class=MsoNormal> paragraphs are single lines;
//   - list items become "- item" or "1. item" (nested lists indented);
//   - <blockquote> lines are prefixed with "> " per level, so quotes read
//     as quotes in the text too;
//   - links keep their target as "text (url)" unless the text already is
//     the target; images show their alt text;
//   - the contents of <head>, <script>, <style>, <title>, <template>,
//     Outlook <xml> islands and display:none elements are dropped;
//   - entities are decoded; whitespace is collapsed outside <pre>.
//
// It is a streaming conversion (golang.org/x/net/html's tokenizer), linear
// in the input whatever its nesting, and never fails: malformed markup
// gives whatever text it contains. The result has "\n" line breaks, no
// trailing blanks and no leading or trailing blank lines.
func HTMLToText(src string) string {
	s := htmlToText(src, true)
	if strings.TrimSpace(s) == "" && strings.TrimSpace(src) != "" {
		// An unclosed <head> or display:none element swallowed
		// everything: convert again without those rules.
		s = htmlToText(src, false)
	}
	return s
}

const (
	maxQuotePrefix = 16 // deepest blockquote level written as "> "
	maxListIndent  = 8  // deepest list level indented
	maxLinkStack   = 64
)

// htmlConv is the state of one conversion.
type htmlConv struct {
	out        strings.Builder
	trailingNL int  // newlines at the end of out
	lineEmpty  bool // nothing but the quote prefix written on the current line
	want       int  // newlines wanted before the next text (0-2)
	space      bool // a collapsible space is pending
	quote      int
	pre        int
	lists      []htmlList
	links      []htmlLink
	cell       bool // inside a table row, a cell was already written

	skipName string // element whose contents are being skipped
	skipNest int
	inHead   bool

	msoP      bool // the open <p> is an Outlook MsoNormal line
	msoPText  bool // ... and has visible text
	strict    bool
	wroteText bool
}

type htmlList struct {
	ordered bool
	n       int
}

type htmlLink struct {
	href  string
	start int // out.Len() when the link opened
}

// skipTags are elements whose contents are never text.
var skipTags = map[string]bool{
	"script": true, "style": true, "title": true, "template": true, "xml": true,
	"object": true, "svg": true, "noembed": true, "noframes": true, "iframe": true,
}

// blockTags are elements that start and end on their own line; the value
// is the number of newlines around them (2 = a blank line).
var blockTags = map[string]int{
	"p": 2, "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2, "pre": 2,
	"table": 1, "dl": 1, "ul": 1, "ol": 1,
	"div": 1, "section": 1, "article": 1, "header": 1, "footer": 1, "nav": 1, "aside": 1,
	"main": 1, "address": 1, "center": 1, "form": 1, "fieldset": 1, "figure": 1,
	"figcaption": 1, "details": 1, "summary": 1, "tr": 1, "dt": 1, "dd": 1, "caption": 1,
	"legend": 1, "hgroup": 1, "menu": 1, "body": 1, "html": 1,
}

func htmlToText(src string, strict bool) string {
	c := &htmlConv{strict: strict, lineEmpty: true}
	z := html.NewTokenizer(strings.NewReader(src))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// io.EOF, or a reader error a strings.Reader cannot have.
			return c.finish()
		case html.TextToken:
			if c.skipName != "" || c.inHead {
				continue
			}
			c.text(string(z.Text()))
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			var attrs map[string]string
			if hasAttr {
				attrs = map[string]string{}
				for {
					k, v, more := z.TagAttr()
					if _, dup := attrs[string(k)]; !dup {
						attrs[string(k)] = string(v)
					}
					if !more {
						break
					}
				}
			}
			c.start(string(name), attrs, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			c.end(string(name))
		}
	}
}

func hiddenStyle(style string) bool {
	s := strings.ToLower(strings.Join(strings.Fields(style), ""))
	return strings.Contains(s, "display:none")
}

func (c *htmlConv) start(name string, attrs map[string]string, selfClosing bool) {
	if c.skipName != "" {
		if name == c.skipName && !selfClosing {
			c.skipNest++
		}
		return
	}
	if c.strict && name == "head" {
		c.inHead = true
		return
	}
	if name == "body" {
		c.inHead = false
	}
	if c.inHead {
		return
	}
	if skipTags[name] {
		if !selfClosing {
			c.skipName, c.skipNest = name, 1
		}
		return
	}
	if c.strict && !selfClosing && !voidTag(name) && hiddenStyle(attrs["style"]) {
		c.skipName, c.skipNest = name, 1
		return
	}
	switch name {
	case "br":
		c.lineBreak()
		return
	case "hr":
		c.block(1)
		c.raw("________________________________")
		c.block(1)
		return
	case "img":
		if alt := strings.TrimSpace(attrs["alt"]); alt != "" {
			c.text(alt)
		}
		return
	case "a":
		if len(c.links) < maxLinkStack {
			c.links = append(c.links, htmlLink{href: strings.TrimSpace(attrs["href"]), start: c.out.Len()})
		}
		return
	case "blockquote":
		c.block(2)
		c.flush() // the blank line before the quote has no "> "
		c.quote++
		return
	case "ul", "ol":
		c.block(1)
		l := htmlList{ordered: name == "ol"}
		if n, err := strconv.Atoi(strings.TrimSpace(attrs["start"])); err == nil && n > -1e6 && n < 1e6 {
			l.n = n - 1
		}
		c.lists = append(c.lists, l)
		return
	case "li":
		c.block(1)
		depth := len(c.lists)
		marker := "- "
		if depth > 0 && c.lists[depth-1].ordered {
			c.lists[depth-1].n++
			marker = strconv.Itoa(c.lists[depth-1].n) + ". "
		}
		indent := depth - 1
		if indent > maxListIndent {
			indent = maxListIndent
		}
		if indent < 0 {
			indent = 0
		}
		c.raw(strings.Repeat("  ", indent) + marker)
		c.space = false
		return
	case "td", "th":
		if c.cell {
			c.space = true
		}
		c.cell = true
		return
	case "tr":
		c.cell = false
	case "pre":
		c.block(2)
		c.pre++
		return
	case "p":
		if strings.Contains(strings.ToLower(attrs["class"]), "msonormal") {
			c.msoP, c.msoPText = true, false
			c.block(1)
			return
		}
		c.msoP = false
	}
	if n, ok := blockTags[name]; ok {
		c.block(n)
	}
}

func (c *htmlConv) end(name string) {
	if c.skipName != "" {
		if name == c.skipName {
			c.skipNest--
			if c.skipNest == 0 {
				c.skipName = ""
			}
		}
		return
	}
	if name == "head" {
		c.inHead = false
		return
	}
	if c.inHead {
		return
	}
	switch name {
	case "a":
		if n := len(c.links); n > 0 {
			l := c.links[n-1]
			c.links = c.links[:n-1]
			c.linkTarget(l)
		}
		return
	case "blockquote":
		if c.quote > 0 {
			c.quote--
		}
		c.block(2)
		return
	case "ul", "ol":
		if n := len(c.lists); n > 0 {
			c.lists = c.lists[:n-1]
		}
		if len(c.lists) == 0 {
			c.block(2)
		} else {
			c.block(1)
		}
		return
	case "pre":
		if c.pre > 0 {
			c.pre--
		}
		c.block(2)
		return
	case "tr":
		c.cell = false
	case "p":
		if c.msoP {
			c.msoP = false
			if !c.msoPText {
				// An empty Outlook line (<o:p>&nbsp;</o:p>) is a blank line.
				c.lineBreak()
			}
			c.block(1)
			return
		}
	}
	if n, ok := blockTags[name]; ok {
		c.block(n)
	}
}

func voidTag(name string) bool {
	switch name {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr":
		return true
	}
	return false
}

// linkTarget writes " (url)" after a link's text unless that would only
// repeat it, or the link has no text or no useful target.
func (c *htmlConv) linkTarget(l htmlLink) {
	href := l.href
	lower := strings.ToLower(href)
	if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(lower, "javascript:") ||
		strings.HasPrefix(lower, "cid:") || strings.HasPrefix(lower, "data:") {
		return
	}
	if l.start > c.out.Len() {
		return
	}
	txt := strings.TrimSpace(c.out.String()[l.start:])
	if txt == "" {
		return
	}
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		for _, p := range []string{"mailto:", "https://", "http://", "tel:"} {
			s = strings.TrimPrefix(s, p)
		}
		return strings.TrimSuffix(strings.TrimPrefix(s, "www."), "/")
	}
	if norm(txt) == norm(href) || strings.Contains(txt, href) {
		return
	}
	c.space = true
	c.text("(" + href + ")")
}

// block asks for n newlines (1 = own line, 2 = blank line) before the
// next text.
func (c *htmlConv) block(n int) {
	if n > c.want {
		c.want = n
	}
	c.space = false
}

// lineBreak is <br>: one more newline than already wanted or written.
func (c *htmlConv) lineBreak() {
	have := c.want
	if c.trailingNL > have {
		have = c.trailingNL
	}
	if have < 2 {
		c.want = have + 1
	}
	if !c.wroteText {
		c.want = 0
	}
	c.space = false
}

// flush writes the newlines wanted before text.
func (c *htmlConv) flush() {
	if !c.wroteText {
		c.want = 0
		return
	}
	for c.trailingNL < c.want {
		c.newline()
	}
	c.want = 0
}

func (c *htmlConv) newline() {
	if c.lineEmpty && c.quote > 0 {
		c.out.WriteString(strings.TrimSpace(c.prefix()))
	}
	c.out.WriteByte('\n')
	c.trailingNL++
	c.lineEmpty = true
}

func (c *htmlConv) prefix() string {
	q := c.quote
	if q > maxQuotePrefix {
		q = maxQuotePrefix
	}
	return strings.Repeat("> ", q)
}

// raw writes s (no newlines) as it is, after pending breaks.
func (c *htmlConv) raw(s string) {
	c.flush()
	if c.lineEmpty {
		if c.quote > 0 {
			c.out.WriteString(c.prefix())
		}
	} else if c.space {
		c.out.WriteByte(' ')
	}
	c.space = false
	c.out.WriteString(s)
	c.trailingNL = 0
	c.lineEmpty = false
	c.wroteText = true
}

// text writes character data: collapsed outside <pre>, line by line
// inside it.
func (c *htmlConv) text(s string) {
	if c.pre > 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				c.flush()
				if !c.wroteText {
					c.wroteText = true
				}
				c.newline()
			}
			line = strings.Map(textRune, line)
			if line != "" {
				c.raw(line)
			}
		}
		return
	}
	if s == "" {
		return
	}
	r := []rune(s)
	if isHTMLSpace(r[0]) {
		c.space = true
	}
	for i, w := range strings.FieldsFunc(s, isHTMLSpace) {
		if i > 0 {
			c.space = true
		}
		w = strings.Map(textRune, w)
		if w == "" {
			continue
		}
		c.raw(w)
		if c.msoP {
			c.msoPText = true
		}
	}
	if isHTMLSpace(r[len(r)-1]) {
		c.space = true
	}
}

func isHTMLSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\f', '\u00a0', '\u2007', '\u202f', '\u3000':
		return true
	}
	return false
}

// textRune drops invisible characters used as spacers in mail templates
// and control characters.
func textRune(r rune) rune {
	switch {
	case r == '\u00a0' || r == '\t':
		return ' '
	case r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\ufeff' || r == '\u034f' || r == '\u00ad':
		return -1
	case r < 0x20 || r == 0x7f:
		return -1
	}
	return r
}

func (c *htmlConv) finish() string {
	s := c.out.String()
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}
