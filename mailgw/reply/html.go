package reply

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// StripHTML removes quoted history from an HTML body (div.gmail_quote,
// blockquote type=cite, Outlook's OLK_SRC_BODY_SECTION / divRplyFwdMsg /
// border-top separated header block, <hr>-separated "From:" blocks,
// Yandex/Mail.ru/Thunderbird moz-cite-prefix, Windows Mail, Hotmail's
// ecxgmail_quote...) and returns the remaining HTML.
//
// It works in two passes, as mailgun/talon does:
//
//  1. Containers that clients reserve for the quoted message are removed:
//     elements whose class names a quote (gmail_quote, ecxgmail_quote,
//     yahoo_quoted, protonmail_quote, zmail_extra), and, from where they
//     start to the end of the document, Outlook's OLK_SRC_BODY_SECTION,
//     divRplyFwdMsg, OutlookMessageHeader and appendonsend, with the
//     <hr> right above them.
//  2. The rest is laid out as lines of text (block elements and <br>
//     break lines, <blockquote> content counts as ">"-quoted, <hr> as a
//     rule line) and planned exactly as [Split] plans plain text: every
//     blockquote goes with the attribution line above it ("On … wrote:",
//     Thunderbird's moz-cite-prefix, Yandex's "date, name <addr>:"), and
//     unquoted history — a header block of an embedded mail
//     (From/Sent/To/Subject in any of the supported languages, whether
//     under an <hr>, in a border-top <div> as Outlook and Windows Mail
//     write it, or bare as Outlook 2010 does) or an "Original Message"
//     marker — is cut from its first element to the end of the document.
//     The cut starts at the outermost element that begins with the
//     history, so the <div> Outlook wraps it in goes with it; a one-line
//     sign-off sharing its container with the rule above the history
//     ("Bob<hr>From: …") goes with it too, as talon cuts that container.
//
// Quote containers and unquoted history are removed only when some
// content precedes them: a forward without a comment keeps the forwarded
// message, and only its marker and header block go, as in Split.
// Blockquotes go wherever they are, so an inline reply keeps the answers
// between them. Signatures are not removed. Elements that a removal
// leaves without visible content are removed too.
//
// A fragment comes back as a fragment, a whole document (one that has
// <html> or <body>) as a whole document, both re-serialised by
// golang.org/x/net/html; when nothing is removed, or the input cannot be
// parsed (html.Parse refuses nesting deeper than 512 elements), the input
// is returned unchanged. The input must be UTF-8: the mail gateway
// decodes the part's charset before calling this.
func StripHTML(s string) string {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return s
	}
	body := findElement(doc, atom.Body)
	if body == nil {
		return s
	}
	changed := removeKnownQuotes(body)
	if stripLines(body) {
		changed = true
	}
	if !changed {
		return s
	}
	var b strings.Builder
	low := strings.ToLower(s)
	if strings.Contains(low, "<html") || strings.Contains(low, "<body") {
		if err := html.Render(&b, doc); err != nil {
			return s
		}
		return b.String()
	}
	for c := body.FirstChild; c != nil; c = c.NextSibling {
		if err := html.Render(&b, c); err != nil {
			return s
		}
	}
	return b.String()
}

// findElement returns the first element a in document order.
func findElement(n *html.Node, a atom.Atom) *html.Node {
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.DataAtom == a {
			return d
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Class names and ids of the containers clients put quoted mail in.
var (
	quoteClasses = []string{"gmail_quote", "yahoo_quoted", "protonmail_quote", "zmail_extra"}
	cutIDs       = []string{"OLK_SRC_BODY_SECTION", "divRplyFwdMsg", "x_divRplyFwdMsg",
		"appendonsend", "mail-editor-reference-message-container"}
	cutClasses = []string{"OutlookMessageHeader"}
)

// removeKnownQuotes is pass 1 of StripHTML.
func removeKnownQuotes(body *html.Node) bool {
	// Whole quote containers, outermost ones, in one walk: a container is
	// removed when visible content precedes it, else it is kept and its
	// content counts as seen.
	touched := map[*html.Node]bool{}
	seen := false
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; {
			next := c.NextSibling
			switch {
			case isContentLeaf(c):
				seen = true
			case c.Type == html.ElementNode && hiddenElement(c):
			case c.Type == html.ElementNode && seen && isQuoteContainer(c):
				touched[n] = true
				n.RemoveChild(c)
			default:
				walk(c)
			}
			c = next
		}
	}
	walk(body)
	changed := len(touched) > 0
	pruneTouched(body, touched)

	// Outlook's reply header containers: cut from there to the end.
	for d := range body.Descendants() {
		if d.Type != html.ElementNode || !isCutContainer(d) {
			continue
		}
		start := d
		if h := prevElement(d); h != nil && h.DataAtom == atom.Hr {
			start = h
		}
		if contentBefore(body, start) {
			cutFrom(start, body)
			changed = true
		}
		break
	}
	return changed
}

func isQuoteContainer(n *html.Node) bool {
	cls := attr(n, "class")
	for _, q := range quoteClasses {
		if strings.Contains(cls, q) {
			return true
		}
	}
	return false
}

func isCutContainer(n *html.Node) bool {
	id := attr(n, "id")
	for _, c := range cutIDs {
		if id == c {
			return true
		}
	}
	cls := attr(n, "class")
	for _, c := range cutClasses {
		if strings.Contains(cls, c) {
			return true
		}
	}
	return false
}

// prevElement returns the previous sibling element of n, skipping white
// space and comments, or nil if there is other content in between.
func prevElement(n *html.Node) *html.Node {
	for s := n.PrevSibling; s != nil; s = s.PrevSibling {
		switch {
		case s.Type == html.CommentNode, s.Type == html.TextNode && isBlank(s.Data):
			continue
		case s.Type == html.ElementNode:
			return s
		}
		return nil
	}
	return nil
}

// contentBefore reports whether body has visible content before n in
// document order.
func contentBefore(body, n *html.Node) bool {
	for d := range body.Descendants() {
		if d == n {
			return false
		}
		if isContentLeaf(d) && !isSkipped(d, body) {
			return true
		}
	}
	return false
}

// isContentLeaf reports a node that is visible content by itself.
func isContentLeaf(n *html.Node) bool {
	switch n.Type {
	case html.TextNode:
		return !isBlank(n.Data)
	case html.ElementNode:
		switch n.DataAtom {
		case atom.Img, atom.Svg, atom.Video, atom.Audio, atom.Object, atom.Embed, atom.Iframe,
			atom.Canvas, atom.Input, atom.Textarea, atom.Select, atom.Button, atom.Picture:
			return true
		}
	}
	return false
}

// isSkipped reports a node inside an element whose content is not shown.
func isSkipped(n, body *html.Node) bool {
	for p := n.Parent; p != nil && p != body; p = p.Parent {
		if p.Type == html.ElementNode && hiddenElement(p) {
			return true
		}
	}
	return false
}

func hiddenElement(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Head, atom.Style, atom.Script, atom.Title, atom.Template, atom.Noscript:
		return true
	}
	return false
}

// pruneTouched removes, in one pass, the elements of touched that have
// no visible content left, and then their ancestors that the removal
// empties in turn (body itself stays).
func pruneTouched(body *html.Node, touched map[*html.Node]bool) {
	if len(touched) == 0 {
		return
	}
	var visit func(n *html.Node) bool
	visit = func(n *html.Node) bool {
		if isContentLeaf(n) {
			return true
		}
		if n.Type == html.ElementNode && hiddenElement(n) {
			return false
		}
		content := false
		for c := n.FirstChild; c != nil; {
			next := c.NextSibling
			if visit(c) {
				content = true
			}
			c = next
		}
		if !content && n != body && n.Type == html.ElementNode && touched[n] && n.Parent != nil {
			touched[n.Parent] = true
			n.Parent.RemoveChild(n)
		}
		return content
	}
	visit(body)
}

// cutFrom removes n and everything after it in document order, up to the
// end of body, then prunes what the removal emptied.
func cutFrom(n, body *html.Node) {
	parent := n.Parent
	for x := n; x != nil && x != body && x.Parent != nil; x = x.Parent {
		p := x.Parent
		for s := x.NextSibling; s != nil; {
			next := s.NextSibling
			p.RemoveChild(s)
			s = next
		}
	}
	parent.RemoveChild(n)
	touched := map[*html.Node]bool{}
	for p := parent; p != nil && p != body; p = p.Parent {
		touched[p] = true
	}
	pruneTouched(body, touched)
}

// attached reports whether n is still in the tree under body.
func attached(n, body *html.Node) bool {
	for p := n; p != nil; p = p.Parent {
		if p == body {
			return true
		}
	}
	return false
}

// hline is one line of the text layout of an HTML body.
type hline struct {
	text  strings.Builder
	nodes []*html.Node // text nodes and content elements on the line
	quote bool         // inside a <blockquote>
	hr    bool         // an <hr>
}

// layout lays an HTML body out as lines of text (pass 2 of StripHTML).
type layout struct {
	lines []*hline
	cur   *hline
	quote int // blockquote depth
	pre   int // pre depth
	owner map[*html.Node][]int
}

func (l *layout) line() *hline {
	if l.cur == nil {
		l.cur = &hline{quote: l.quote > 0}
	}
	return l.cur
}

// soft ends the current line if it has anything on it (a block boundary).
func (l *layout) soft() {
	if l.cur != nil && (l.cur.text.Len() > 0 || len(l.cur.nodes) > 0) {
		l.lines = append(l.lines, l.cur)
	}
	l.cur = nil
}

// hard ends the current line even if it is empty (<br>).
func (l *layout) hard() {
	l.lines = append(l.lines, l.line())
	l.cur = nil
}

func (l *layout) add(n *html.Node, text string) {
	ln := l.line()
	ln.nodes = append(ln.nodes, n)
	l.owner[n] = append(l.owner[n], len(l.lines))
	ln.text.WriteString(text)
}

func isBlock(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Center, atom.Dd, atom.Details,
		atom.Dialog, atom.Dir, atom.Div, atom.Dl, atom.Dt, atom.Fieldset, atom.Figcaption, atom.Figure,
		atom.Footer, atom.Form, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Header,
		atom.Hgroup, atom.Li, atom.Main, atom.Menu, atom.Nav, atom.Ol, atom.P, atom.Pre, atom.Section,
		atom.Summary, atom.Table, atom.Tbody, atom.Thead, atom.Tfoot, atom.Tr, atom.Ul, atom.Caption:
		return true
	}
	return false
}

// walk lays out n. Its recursion is bounded by html.Parse, which
// rejects documents nested deeper than 512 elements.
func (l *layout) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		l.text(n)
		return
	case html.ElementNode:
	default:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			l.walk(c)
		}
		return
	}
	if hiddenElement(n) {
		return
	}
	switch n.DataAtom {
	case atom.Br:
		l.hard()
		return
	case atom.Hr:
		l.soft()
		ln := l.line()
		ln.hr = true
		l.add(n, "")
		l.soft()
		return
	case atom.Img:
		l.add(n, "")
		return
	case atom.Td, atom.Th:
		if l.cur != nil && l.cur.text.Len() > 0 {
			l.cur.text.WriteByte(' ')
		}
	}
	block := isBlock(n.DataAtom)
	if block {
		l.soft()
	}
	if n.DataAtom == atom.Blockquote {
		l.quote++
	}
	if n.DataAtom == atom.Pre {
		l.pre++
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		l.walk(c)
	}
	if n.DataAtom == atom.Pre {
		l.pre--
	}
	if n.DataAtom == atom.Blockquote {
		l.quote--
	}
	if block {
		l.soft()
	}
}

// text lays out a text node: white space collapses, except in <pre>
// where newlines break lines.
func (l *layout) text(n *html.Node) {
	if l.pre > 0 {
		parts := strings.Split(n.Data, "\n")
		for i, p := range parts {
			if i > 0 {
				l.hard()
			}
			if !isBlank(p) {
				l.add(n, p)
			}
		}
		return
	}
	if isBlank(n.Data) && !strings.ContainsRune(n.Data, '\u00a0') {
		if l.cur != nil && l.cur.text.Len() > 0 {
			l.cur.text.WriteByte(' ')
		}
		return
	}
	t := strings.Join(strings.Fields(n.Data), " ")
	if l.cur != nil && l.cur.text.Len() > 0 && startsSpace(n.Data) {
		t = " " + t
	}
	if t == "" {
		t = " "
	}
	if endsSpace(n.Data) {
		t += " "
	}
	l.add(n, t)
}

func startsSpace(s string) bool {
	return s != "" && strings.ContainsRune(" \t\n\r\f", rune(s[0]))
}

func endsSpace(s string) bool {
	return s != "" && strings.ContainsRune(" \t\n\r\f", rune(s[len(s)-1]))
}

// stripLines is pass 2 of StripHTML.
func stripLines(body *html.Node) bool {
	l := &layout{owner: map[*html.Node][]int{}}
	l.walk(body)
	l.soft()
	if len(l.lines) == 0 {
		return false
	}
	texts := make([]string, len(l.lines))
	force := make([]kind, len(l.lines))
	for i, ln := range l.lines {
		texts[i] = strings.TrimSpace(ln.text.String())
		switch {
		case ln.quote:
			force[i] = kQuote
		case ln.hr:
			force[i] = kDelim
		}
	}
	a := analyze(texts, force)

	changed := false
	touched := map[*html.Node]bool{}
	var cut *html.Node
	if a.cut < len(texts) {
		cut = l.cutNode(a, body)
	}
	// Remove the quoted lines above the cut, node by node: a line's text
	// nodes, or the outermost blockquote around them.
	for i := 0; i < a.cut; i++ {
		if a.role[i] != rQuoted {
			continue
		}
		for _, n := range l.lines[i].nodes {
			target := n
			if bq := outermostBlockquote(n, body); bq != nil {
				target = bq
			} else if !l.allQuoted(n, a) {
				continue
			}
			if cut != nil && (target == cut || isAncestor(target, cut)) || !attached(target, body) {
				continue
			}
			touched[target.Parent] = true
			target.Parent.RemoveChild(target)
			changed = true
		}
	}
	pruneTouched(body, touched)
	if cut != nil && attached(cut, body) {
		cutFrom(cut, body)
		changed = true
	}
	return changed
}

// allQuoted reports whether every line n is on is quoted (a <pre> text
// node may span several lines).
func (l *layout) allQuoted(n *html.Node, a *analysis) bool {
	for _, i := range l.owner[n] {
		if i >= len(a.role) || a.role[i] != rQuoted {
			return false
		}
	}
	return true
}

// cutNode returns the element to cut from for the history starting at
// line a.cut: the outermost element that begins with that line's first
// node, or the container of a one-line sign-off above a rule line.
func (l *layout) cutNode(a *analysis, body *html.Node) *html.Node {
	ln := l.lines[a.cut]
	if len(ln.nodes) == 0 {
		return nil
	}
	start := ln.nodes[0]
	c := start
	for c.Parent != nil && c.Parent != body && prevElementOrNone(c) {
		c = c.Parent
	}
	if c != start || !ln.hr {
		return c
	}
	// "Bob<hr>From: …": the rule is not the first thing in its container
	// and only a short sign-off precedes it there.
	d := c.Parent
	if d == nil || d == body || d.Type != html.ElementNode || d.DataAtom != atom.Div {
		return c
	}
	var inside []int
	before := false
	for i := 0; i < a.cut; i++ {
		if a.kinds[i] == kEmpty || a.role[i] == rQuoted || len(l.lines[i].nodes) == 0 {
			continue
		}
		if isAncestor(d, l.lines[i].nodes[0]) {
			inside = append(inside, i)
		} else {
			before = true
		}
	}
	if before && len(inside) == 1 && a.kinds[inside[0]] == kText && nameLike(a.ms[inside[0]], 3) {
		a.role[inside[0]] = rQuoted
		return d
	}
	return c
}

// prevElementOrNone reports whether n is the first content of its parent
// (only white space and comments before it).
func prevElementOrNone(n *html.Node) bool {
	for s := n.PrevSibling; s != nil; s = s.PrevSibling {
		if s.Type == html.CommentNode || s.Type == html.TextNode && isBlank(s.Data) {
			continue
		}
		return false
	}
	return true
}

func isAncestor(a, n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p == a {
			return true
		}
	}
	return false
}

func outermostBlockquote(n, body *html.Node) *html.Node {
	var bq *html.Node
	for p := n; p != nil && p != body; p = p.Parent {
		if p.Type == html.ElementNode && p.DataAtom == atom.Blockquote {
			bq = p
		}
	}
	return bq
}
