// Package reply separates the new text of a mail body from the quoted
// history and the signature under it, so that the tracker stores what the
// writer added and not the whole thread again (DESIGN §5, "The text").
//
// The method is discourse/email_reply_trimmer's: classify every line on
// its own (blank, ">" quote, rule line, client sign-off such as "Sent
// from my iPhone", header line of an embedded mail, "-----Original
// Message-----" marker, "On … wrote:" attribution, or text), then decide
// from the sequence of classes where the history and the signature begin.
// The attribution patterns follow github/email_reply_parser and
// mailgun/talon (and cover the languages of the shared corpus: English,
// French, German, Dutch, Chinese, Spanish, Italian, Polish, Russian,
// Swedish, Portuguese, Japanese, Korean, …); the signature-block
// heuristics ("-Name", a name over an address and a phone number) follow
// email_reply_parser and talon's signature extraction. What differs from
// the trimmer:
//
//   - ">" quotes are cut wherever they are, so the writer's lines between
//     the quotes of an inline reply are kept and the quotes dropped;
//   - a rule line ("----", "====") starts a signature only when what
//     follows is short and looks like one, so a Markdown rule in the
//     middle of a bug report does not swallow the rest of it;
//   - "Sent from my …" lines are cut only at the end of the new text.
//
// Everything is line-based and linear in the size of the body; the
// regular expressions are RE2 and only ever see lines shorter than
// [maxMatchLen].
package reply

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Result is a body split into the new text and what was cut from it.
type Result struct {
	Text      string // the new text: no quoted history, no signature; trimmed of surrounding blank lines
	Quoted    string // the quoted history that was cut (attribution line + quote), "" if none
	Signature string // the cut signature ("-- " block, "Sent from my ...", etc.), "" if none
}

// Split separates body into the writer's new text, the quoted history it
// carries and the signature under it. Line endings may be LF, CRLF or CR;
// the parts come back with LF. Every line of Text is a line of body, in
// order: Split only removes lines, it never rewrites them (the last line
// loses its trailing white space).
//
// What is cut as quoted history:
//   - ">" quoted lines, wherever they are, with the attribution that
//     introduces them ("On Tue, 1 Mar 2011, Bob <b@example.org> wrote:",
//     also when wrapped over up to four lines and in the languages listed
//     in the package comment);
//   - unquoted history, from its start to the end of the body: an
//     Outlook-style header block (three or more of From/Sent/To/Subject
//     and their translations, with the "____" or "----" rule above it),
//     a "-----Original Message-----" or "Forwarded message" marker, or an
//     attribution carrying a date or an address that no quote follows.
//     When nothing of the writer's stands above such a block (a forward
//     with no comment, a bottom post), only the marker and its header
//     lines are cut and what follows them is kept as the text.
//
// What is cut as the signature, from its first line to the end of the
// new text (quotes and history below it go to Quoted):
//   - "-- " (RFC 3676 §4.3) and everything under it;
//   - "--", a line of underscores (Outlook, Mailman list footers) or "ᐧ",
//     with at most 15 non-blank lines under it;
//   - any other rule line ("-----", "====") with at most 15 non-blank
//     lines under it that are only rules and sign-offs, or that include
//     contact lines of two kinds (address, URL, phone number);
//   - a "-Name" sign-off after a blank line, with at most 10 non-blank
//     lines under it (email_reply_parser's "-Abhishek Kona");
//   - client sign-offs at the end ("Sent from my iPhone", "Envoyé de mon
//     iPhone", "Von meinem iPhone gesendet", "Get Outlook for iOS"), with
//     a name alone on the line above them ("Stavros" / "via mobile");
//   - a last paragraph of at most eight short lines made of a name and
//     contact lines of two kinds (talon's signature blocks).
//
// Sign-offs such as "Thanks,\nBob" stay in the text. Quoted holds the cut
// runs of history in order, separated by a blank line.
func Split(body string) Result {
	lines := splitLines(body)
	a := analyze(lines, nil)
	return a.result()
}

// splitLines normalises CRLF and CR-only line endings to LF and splits.
func splitLines(s string) []string {
	if strings.IndexByte(s, '\r') >= 0 {
		var b strings.Builder
		b.Grow(len(s))
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\r' {
				if i+1 < len(s) && s[i+1] == '\n' {
					continue
				}
				c = '\n'
			}
			b.WriteByte(c)
		}
		s = b.String()
	}
	return strings.Split(s, "\n")
}

// role is where the planner puts a line.
type role uint8

const (
	rText role = iota
	rQuoted
	rSig
)

// analysis is one body's lines, their classes and the planner's verdict.
type analysis struct {
	lines []string
	ms    []string // match forms; "" for blank, quoted, rule and over-long lines
	kinds []kind
	field []byte // header field of kHeader lines
	span  []int  // lines in the unit that starts here (an attribution may span several); 0 inside a unit
	role  []role
	cut   int // first line of the unquoted history that runs to the end; len(lines) if none
}

// analyze classifies lines and plans the split. force, if not nil, gives
// a class that overrides what the text says for some lines (kText means
// "no override"): the HTML path uses it for <blockquote> content and <hr>.
func analyze(lines []string, force []kind) *analysis {
	n := len(lines)
	a := &analysis{
		lines: lines,
		ms:    make([]string, n),
		kinds: make([]kind, n),
		field: make([]byte, n),
		span:  make([]int, n),
		role:  make([]role, n),
		cut:   n,
	}
	a.classify(force)
	a.planQuotes()
	a.planHistory()
	a.planSignature()
	return a
}

func (a *analysis) classify(force []kind) {
	fenced := codeFences(a.lines)
	for i, l := range a.lines {
		a.span[i] = 1
		switch {
		case force != nil && force[i] != kText:
			a.kinds[i] = force[i]
			continue
		case isBlank(l):
			a.kinds[i] = kEmpty
			continue
		case fenced != nil && fenced[i]:
			a.kinds[i] = kText
			continue
		case isQuote(l):
			a.kinds[i] = kQuote
			continue
		case isDelim(l):
			a.kinds[i] = kDelim
			continue
		case len(l) > maxMatchLen:
			a.kinds[i] = kText
			continue
		}
		m := matchForm(l)
		a.ms[i] = m
		lm := strings.ToLower(m)
		if isMarker(lm) {
			a.kinds[i] = kMarker
			continue
		}
		if f := headerField(m); f != 0 {
			a.kinds[i] = kHeader
			a.field[i] = f
			continue
		}
		if k := attribution(lm); k != kText {
			a.kinds[i] = k
		} else if isMobile(lm) {
			a.kinds[i] = kMobile
		}
	}
	a.joinAttributions()
}

// joinAttributions finds attributions wrapped over several lines
// ("On Dec 16, 2011, at 12:47 PM, Corey Donohoe" / "<reply@reply.github.com>"
// / "wrote:") and makes each one unit. Only strong attributions (with a
// date, a time or an address) that start like one are joined.
func (a *analysis) joinAttributions() {
	n := len(a.lines)
	for i := 0; i < n; i++ {
		if a.kinds[i] != kText || a.ms[i] == "" || !joinAnchorStart(a.ms[i]) || endsSentence(a.ms[i]) || !joinAnchorRe.MatchString(a.ms[i]) {
			continue
		}
		joined := a.ms[i]
		for j := i + 1; j < n && j < i+maxJoin; j++ {
			k := a.kinds[j]
			if (k != kText && k != kAttrib && k != kAttribWeak) || a.ms[j] == "" {
				break
			}
			joined += " " + a.ms[j]
			if len(joined) > 400 {
				break
			}
			if colonEnd(a.ms[j]) && attribution(strings.ToLower(joined)) == kAttrib {
				for x := i; x <= j; x++ {
					a.kinds[x] = kAttrib
					a.span[x] = 0
				}
				a.span[i] = j - i + 1
				i = j
				break
			}
			if endsSentence(a.ms[j]) {
				break
			}
		}
	}
}

// joinAnchorStart is a cheap test of what joinAnchorRe needs: after
// "-*> ", one of its words' first letters or a digit.
func joinAnchorStart(m string) bool {
	r, _ := utf8.DecodeRuneInString(strings.TrimLeft(m, "-*> "))
	return strings.ContainsRune("OLAEIDWV在於", r) || unicode.IsDigit(r)
}

// codeFences marks the lines inside closed ``` fences (nil if there are
// none): a "#" or "----" line in a code sample is not a delimiter.
func codeFences(lines []string) []bool {
	var in []bool
	open := -1
	for i, l := range lines {
		if !strings.HasPrefix(strings.TrimLeft(l, " \t"), "```") {
			continue
		}
		if open < 0 {
			open = i
			continue
		}
		if in == nil {
			in = make([]bool, len(lines))
		}
		for j := open; j <= i; j++ {
			in[j] = true
		}
		open = -1
	}
	return in
}

func (a *analysis) isAttrib(i int) bool {
	return (a.kinds[i] == kAttrib || a.kinds[i] == kAttribWeak) && a.span[i] > 0
}

// nextFilled returns the first non-blank line at or after i, or len(lines).
func (a *analysis) nextFilled(i int) int {
	for i < len(a.lines) && a.kinds[i] == kEmpty {
		i++
	}
	return i
}

func (a *analysis) mark(from, to int, r role) {
	for i := from; i < to; i++ {
		a.role[i] = r
	}
}

// planQuotes cuts every ">" quote, the blank lines inside it, and the
// attribution that introduces it.
func (a *analysis) planQuotes() {
	n := len(a.lines)
	last := -1
	for i := 0; i < n; i++ {
		switch a.kinds[i] {
		case kQuote:
			start := i
			if last >= 0 {
				start = last + 1
			}
			a.mark(start, i+1, rQuoted)
			last = i
		case kEmpty:
		default:
			last = -1
		}
	}
	for i := 0; i < n; i++ {
		if !a.isAttrib(i) {
			continue
		}
		j := a.nextFilled(i + a.span[i])
		if j < n && a.kinds[j] == kQuote {
			a.mark(i, j, rQuoted)
		}
	}
}

// planHistory finds unquoted history and cuts it to the end of the body.
// When no text of the writer's stands above it, only the marker and its
// header block are cut (email_reply_trimmer: "the reply is at the end of
// the email") and the search goes on below.
func (a *analysis) planHistory() {
	n := len(a.lines)
	pos := 0
	for pos < n {
		i, end := a.findHistory(pos)
		if i < 0 {
			return
		}
		s := a.extendBack(i, pos)
		// [0, pos) holds no text of the writer's: it is blank or already cut.
		if a.hasText(pos, s) {
			a.cut = s
			a.mark(s, n, rQuoted)
			return
		}
		end = a.nextFilled(end)
		a.mark(s, end, rQuoted)
		pos = end
	}
}

// findHistory returns the first line at or after pos that starts
// unquoted history, and the end of its marker (the marker or attribution
// and the header block right under it), or -1.
func (a *analysis) findHistory(pos int) (start, end int) {
	n := len(a.lines)
	for i := pos; i < n; i++ {
		if a.role[i] == rQuoted {
			continue
		}
		switch a.kinds[i] {
		case kMarker, kAttrib:
			if a.span[i] == 0 {
				continue
			}
			end := i + a.span[i]
			if e, ok := a.headerBlock(a.nextFilled(end)); ok {
				end = e
			}
			return i, end
		case kHeader:
			if e, ok := a.headerBlock(i); ok {
				return i, e
			}
		}
	}
	return -1, -1
}

// headerBlock reports whether a header block of an embedded mail starts
// at line i: at least three header lines of at least three different
// fields before the next blank line (values may wrap onto lines of their
// own). It returns the line after the last header line.
func (a *analysis) headerBlock(i int) (end int, ok bool) {
	n := len(a.lines)
	if i >= n || a.kinds[i] != kHeader {
		return 0, false
	}
	var fields byte
	count := 0
	for j := i; j < n && j < i+30; j++ {
		k := a.kinds[j]
		if k == kEmpty || k == kQuote || a.role[j] == rQuoted {
			break
		}
		if k == kHeader {
			count++
			fields |= a.field[j]
			end = j + 1
		}
	}
	return end, count >= 3 && bitCount(int(fields)) >= 3
}

// extendBack moves the start of a history block up over blank lines onto
// the rule line that Outlook and webmails put above it ("____…", "-----").
func (a *analysis) extendBack(i, lo int) int {
	j := i - 1
	for j >= lo && a.kinds[j] == kEmpty && a.role[j] != rQuoted {
		j--
	}
	if j >= lo && a.kinds[j] == kDelim && a.role[j] != rQuoted {
		return j
	}
	return i
}

func (a *analysis) hasText(lo, hi int) bool {
	for j := lo; j < hi; j++ {
		if a.kinds[j] != kEmpty && a.role[j] != rQuoted {
			return true
		}
	}
	return false
}

// Signature limits.
const (
	maxSigLines     = 15 // non-blank lines after a rule line
	maxDashSigLines = 10 // non-blank lines after a "-Name" sign-off
	maxContactLines = 8  // lines of a name-and-contacts block
)

// planSignature finds where the signature starts among the lines still
// kept and marks it and everything kept after it.
func (a *analysis) planSignature() {
	keep := make([]int, 0, a.cut)
	for i := 0; i < a.cut; i++ {
		if a.role[i] == rText {
			keep = append(keep, i)
		}
	}
	p := a.findSignature(keep)
	for _, i := range keep[p:] {
		a.role[i] = rSig
	}
}

func (a *analysis) findSignature(keep []int) int {
	best := len(keep)
	after := make([]int, len(keep)+1) // non-blank kept lines after position p
	for p := len(keep) - 1; p >= 0; p-- {
		after[p] = after[p+1]
		if a.kinds[keep[p]] != kEmpty {
			after[p] = after[p+1] + 1
		}
	}

	// A rule line: "-- ", "--", "__", "ᐧ" start a signature or a list
	// footer; other rules only when what follows them (up to the next
	// strong rule: a footnote between "---" and "-- " is text) looks like
	// a signature.
	for p, i := range keep {
		if a.kinds[i] != kDelim {
			continue
		}
		if a.lines[i] == "-- " || (a.strongRule(i) && after[p+1] <= maxSigLines) {
			best = p
			break
		}
		if after[p+1] > maxSigLines {
			continue
		}
		q := p + 1
		for q < len(keep) && !(a.kinds[keep[q]] == kDelim && a.strongRule(keep[q])) {
			q++
		}
		if a.sigLike(keep[p+1 : q]) {
			best = p
			break
		}
	}

	// "-Abhishek Kona" after a blank line, with little under it.
	for p, i := range keep {
		if p >= best {
			break
		}
		if after[p+1] <= maxDashSigLines && a.ms[i] != "" && (p == 0 || a.kinds[keep[p-1]] == kEmpty) &&
			dashNameRe.MatchString(a.ms[i]) {
			best = p
			break
		}
	}

	// Client sign-offs at the end, with a name alone above them
	// ("Stavros Xxxxxx" / "via mobile").
	first := -1
	for p := len(keep) - 1; p >= 0; p-- {
		k := a.kinds[keep[p]]
		if k == kEmpty {
			continue
		}
		if k != kMobile {
			break
		}
		first = p
	}
	if first >= 0 {
		if q := first - 1; q > 0 && keep[q] == keep[first]-1 && a.kinds[keep[q]] == kText &&
			a.kinds[keep[q-1]] == kEmpty && !strings.HasSuffix(a.ms[keep[q]], ",") &&
			nameLike(a.ms[keep[q]], 3) {
			first = q
		}
		best = min(best, first)
	}

	// A last paragraph made of a name and contact lines.
	end := len(keep)
	for end > 0 && a.kinds[keep[end-1]] == kEmpty {
		end--
	}
	start := end
	for start > 0 && a.kinds[keep[start-1]] != kEmpty {
		start--
	}
	if start > 0 && start < best && end-start >= 2 && end-start <= maxContactLines && a.hasText(0, keep[start]) {
		if a.contactBlock(keep[start:end]) {
			best = start
		}
	}
	return best
}

// strongRule reports a rule line that is a signature separator by
// itself: "--", "-- ", underscores (Outlook, Mailman footers), "ᐧ".
func (a *analysis) strongRule(i int) bool {
	t := strings.TrimSpace(a.lines[i])
	return isSigDash(t) || strings.Trim(t, "_") == "" || t == "ᐧ"
}

// sigLike reports whether the kept lines after a weak rule line look like
// a signature: only rules, blanks and sign-offs, or contact lines of at
// least two kinds (a phone number and a URL, an address and a phone
// number), so that a Markdown rule above a few steps with one link is
// not taken for one.
func (a *analysis) sigLike(rest []int) bool {
	kinds, other := 0, false
	for _, i := range rest {
		switch a.kinds[i] {
		case kEmpty, kDelim, kMobile:
			continue
		}
		other = true
		if a.ms[i] != "" {
			kinds |= contactKind(a.ms[i])
		}
	}
	return !other || bitCount(kinds) >= 2
}

func bitCount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// contactBlock reports a paragraph made of a short name line and short
// lines of which at least two kinds (address, URL, phone) are contacts.
func (a *analysis) contactBlock(para []int) bool {
	name := a.ms[para[0]]
	if a.kinds[para[0]] != kText || contactKind(name) != 0 || strings.ContainsAny(name, ":：") || !nameLike(name, 6) {
		return false
	}
	kinds := 0
	for _, i := range para {
		m := a.ms[i]
		if (a.kinds[i] != kText && a.kinds[i] != kMobile) || m == "" || len([]rune(m)) > 60 || len(strings.Fields(m)) > 6 {
			return false
		}
		kinds |= contactKind(m)
	}
	return bitCount(kinds) >= 2
}

// result assembles the three parts.
func (a *analysis) result() Result {
	return Result{
		Text:      a.joinText(),
		Quoted:    a.joinRuns(rQuoted),
		Signature: a.joinRuns(rSig),
	}
}

// joinText joins the kept lines. Where lines were cut out between two
// kept ones, the blank lines on both sides of the gap shrink to one.
func (a *analysis) joinText() string {
	n := 0
	for _, r := range a.role {
		if r == rText {
			n++
		}
	}
	out := make([]string, 0, n)
	prev := -1
	budget := -1 // blank lines still allowed after a gap; -1: no limit
	for i, l := range a.lines {
		if a.role[i] != rText {
			continue
		}
		if prev >= 0 && i != prev+1 {
			for len(out) >= 2 && isBlank(out[len(out)-1]) && isBlank(out[len(out)-2]) {
				out = out[:len(out)-1]
			}
			budget = 1
			if len(out) > 0 && isBlank(out[len(out)-1]) {
				budget = 0
			}
		}
		prev = i
		if a.kinds[i] == kEmpty && isBlank(l) {
			if budget == 0 {
				continue
			}
			if budget > 0 {
				budget--
			}
		} else {
			budget = -1
		}
		out = append(out, l)
	}
	return trimLines(out)
}

// joinRuns joins the lines of role r; separate runs are separated by one
// blank line.
func (a *analysis) joinRuns(r role) string {
	var runs []string
	var cur []string
	flush := func() {
		if s := trimLines(cur); s != "" {
			runs = append(runs, s)
		}
		cur = cur[:0]
	}
	for i, l := range a.lines {
		if a.role[i] != r {
			if len(cur) > 0 && a.kinds[i] != kEmpty {
				flush()
			}
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return strings.Join(runs, "\n\n")
}

// trimLines drops blank lines at both ends, joins with LF and trims the
// white space at the end.
func trimLines(ls []string) string {
	for len(ls) > 0 && isBlank(ls[0]) {
		ls = ls[1:]
	}
	for len(ls) > 0 && isBlank(ls[len(ls)-1]) {
		ls = ls[:len(ls)-1]
	}
	return strings.TrimRightFunc(strings.Join(ls, "\n"), unicode.IsSpace)
}
