package mailgw

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Subject is a mail subject split by Roundup's subject grammar (DESIGN §5):
//
//	Re: Fwd: [list-tag] [issue123] The title [status=resolved;nosy=+bob@example.org]
//
// ParseSubject fills it without knowing the tracker's issues or schema: the
// applier checks IssueID and Props against the store and, in "loose" mode,
// falls back to TitleWithDesignator or TitleWithSuffix when it rejects them.
// When it rejects both, ParseSubject(subject, "none", "none").Title is the
// loose title.
type Subject struct {
	// Title is the subject with the reply/forward prefixes, the
	// designator, the list tags in front of the designator and the suffix
	// removed, whitespace runs (and control characters) collapsed to one
	// space, trimmed. It may be empty.
	Title string
	// IssueID is N from the designator [issueN]; 0 when there is none.
	IssueID int64
	// NewIssue reports a designator without number, [issue]: the sender
	// asks for a new issue even if the mail would otherwise thread.
	NewIssue bool
	// Designator is the designator exactly as written ("[ Issue 12 ]"),
	// "" when there is none.
	Designator string
	// Props are the property changes of the suffix in the order written;
	// nil when there is no suffix.
	Props []PropChange
	// Suffix is the suffix exactly as written ("[status=resolved]"), ""
	// when there is none.
	Suffix string
	// TitleWithDesignator is the title the subject has if the designator
	// is not taken as one (loose mode, unknown issue): the designator and
	// whatever preceded it stay in the title. Equal to Title when there is
	// no designator.
	TitleWithDesignator string
	// TitleWithSuffix is the title the subject has if the suffix is not
	// taken as one (loose mode, unknown property or value): the bracket
	// stays at the end of the title. Equal to Title when there is no
	// suffix.
	TitleWithSuffix string
}

// PropChange is one property change of a subject suffix
// ("[status=resolved]", "[nosy=+bob@example.org,-carol@example.org]") or of
// a body command (see Command.Change). Names and values are as written; the
// applier matches them against the schema case-insensitively and refuses
// unknown ones in strict mode.
type PropChange struct {
	// Name is the property name, lowercased: "status", "priority",
	// "assignedto", "title", "superseder", "keyword", "nosy", or anything
	// else the sender wrote.
	Name string
	// Value is the value as written, trimmed. For a single-valued property
	// it is the new value; "" clears the property ("[assignedto=]"). For
	// the multi-valued keyword and nosy it is the raw list; use Set, Add
	// and Remove.
	Value string
	// Set is the full new list of a multi-valued property written without
	// any +/- ("keyword=a,b"). It is non-nil (possibly empty, which clears
	// the list) exactly when the change replaces the list.
	Set []string
	// Add and Remove are the items of a multi-valued property written with
	// + and - ("nosy=+bob,-carol"). As in Roundup, once any item carries a
	// sign the unsigned items are added too ("keyword=a,+b" adds a and b).
	Add, Remove []string
}

// IsMulti reports whether the change is to one of the multi-valued
// properties (keyword, nosy), whose value is in Set, Add and Remove.
func (p PropChange) IsMulti() bool { return subjIsMulti(p.Name) }

// String writes the change in the suffix grammar, with lists normalised:
// "status=resolved", "nosy=+bob@example.org,-carol@example.org",
// "keyword=a,b". Parsing "[" + p.String() + "]" gives p back (Value of a
// multi-valued change in its normalised form).
func (p PropChange) String() string {
	if !p.IsMulti() {
		return p.Name + "=" + p.Value
	}
	return p.Name + "=" + subjListString(p.Set, p.Add, p.Remove)
}

func subjListString(set, add, remove []string) string {
	if set != nil {
		return strings.Join(set, ",")
	}
	items := make([]string, 0, len(add)+len(remove))
	for _, a := range add {
		items = append(items, "+"+a)
	}
	for _, r := range remove {
		items = append(items, "-"+r)
	}
	return strings.Join(items, ",")
}

// Subject parsing modes: the values of config mailgw.subject_prefix_parsing
// and mailgw.subject_suffix_parsing, with Roundup's meaning.
const (
	// SubjectStrict: a malformed designator or suffix is an error the
	// sender is told about, and so is (for the applier) an unknown issue,
	// property or value.
	SubjectStrict = "strict"
	// SubjectLoose: what cannot be used is title text.
	SubjectLoose = "loose"
	// SubjectNone: the part is not looked for; brackets are title text.
	SubjectNone = "none"
)

// ParseSubject splits a decoded subject line by Roundup's grammar. It is
// pure: no store, no schema.
//
//   - Leading reply and forward prefixes are skipped: Re, Fwd, Fw, Aw, Sv,
//     Ang and Tr, in any case, followed by a colon (ASCII or fullwidth),
//     optionally with a counter and spaces ("Re[2]:", "RE :", "Re(3):"),
//     repeated and mixed ("Re: Fwd: RE:"). A word not followed by a colon
//     is title text ("Re organise files").
//   - After a prefix, one pair of double quotes around the rest is
//     removed (Re: "[issue3] foo"), as Roundup does for mailers that quote
//     the subject they answer. A subject that merely starts with a quoted
//     word keeps its quotes.
//   - The designator is the first bracket anywhere that reads
//     [issueN] or [issue], case-insensitive, spaces allowed
//     ("[ Issue 12 ]"). List tags, prefixes and quotes in front of it
//     ("[python-dev] Re: [issue12] crash") are dropped from the title; other
//     text in front of it ("crash in parser [issue12]") stays. Any other
//     bracket — a list tag with no designator, "[Fwd: …]", "[PATCH]", a
//     second designator — is title text.
//   - The suffix is the last bracket, when only whitespace (or the
//     designator) follows it and it contains '='. It
//     is a ';'-separated list of name=value with spaces allowed around
//     names, '=' and ';'; keyword and nosy take a ','-separated list, each
//     item optionally signed + or -. A trailing bracket without '='
//     ("[Fwd: foo]", "[SOLVED]") is title text, in every mode.
//
// prefixMode and suffixMode are SubjectStrict, SubjectLoose or SubjectNone;
// any other value (including "") means strict. With SubjectNone the part is
// not looked for at all. The error is non-nil only in strict mode, for a
// designator whose number cannot name an issue ("[issue0]", a number beyond
// int64) or a suffix that is not a list of name=value; its text tells the
// sender what to write instead. With the error the Subject is still
// returned, filled as loose mode fills it (the bad part is title text), so
// the caller can still route the mail and quote the subject.
//
// Reply prefixes are skipped in every mode: Roundup's loose fallback keeps
// the raw subject, "Re:" and all, as title; trackerd does not.
func ParseSubject(subject, prefixMode, suffixMode string) (Subject, error) {
	t := subjStripPrefixes(subject)

	var errs []string
	var dsg subjSpan // designator, in t
	var sub Subject
	if prefixMode != SubjectNone {
		var bad string
		dsg, sub.IssueID, sub.NewIssue, bad = subjFindDesignator(t)
		if bad != "" && prefixMode != SubjectLoose {
			errs = append(errs, bad)
		}
	}

	var sfx subjSpan // suffix, in t
	if suffixMode != SubjectNone {
		var bad string
		sfx, sub.Props, bad = subjFindSuffix(t, dsg)
		if bad != "" && suffixMode != SubjectLoose {
			errs = append(errs, bad)
		}
	}

	var junk subjSpan // list tags and prefixes before the designator
	if dsg.ok && subjIsJunk(t[:dsg.start]) {
		junk = subjSpan{start: 0, end: dsg.start, ok: true}
	}
	sub.Title = subjCollapse(subjCut(t, dsg, junk, sfx))
	sub.TitleWithDesignator = subjCollapse(subjCut(t, sfx))
	sub.TitleWithSuffix = subjCollapse(subjCut(t, dsg, junk))
	if dsg.ok {
		sub.Designator = t[dsg.start:dsg.end]
	}
	if sfx.ok {
		sub.Suffix = t[sfx.start:sfx.end]
	}
	if len(errs) > 0 {
		return sub, fmt.Errorf("subject %q: %s", subject, strings.Join(errs, "; "))
	}
	return sub, nil
}

// subjSpan is a byte range [start, end) of the prefix-stripped subject.
type subjSpan struct {
	start, end int
	ok         bool
}

// subjCut returns t without the given spans (overlaps allowed), each
// replaced by a space so that the words on either side stay apart.
func subjCut(t string, spans ...subjSpan) string {
	var b strings.Builder
	pos := 0
	for {
		// The span that starts first among those still ahead of pos.
		next := -1
		for i, s := range spans {
			if s.ok && s.end > pos && (next < 0 || s.start < spans[next].start) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		if start := spans[next].start; start > pos {
			b.WriteString(t[pos:start])
		}
		b.WriteByte(' ')
		pos = spans[next].end
	}
	b.WriteString(t[pos:])
	return b.String()
}

// subjCollapse turns every run of whitespace and control characters into
// one space and trims the ends. Invalid UTF-8 bytes are kept as they are.
func subjCollapse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteByte(s[i])
			i++
			continue
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
		} else {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// subjTrimLeft drops leading whitespace and control characters.
func subjTrimLeft(s string) string {
	return strings.TrimLeftFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// subjTrimRight drops trailing whitespace and control characters.
func subjTrimRight(s string) string {
	return strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// subjStripPrefixes removes leading reply/forward prefixes and, after a
// prefix, one pair of quotes around the rest; repeatedly, so
// `Re: "Fwd: [issue1] x"` loses both prefixes and the quotes.
func subjStripPrefixes(s string) string {
	sawPrefix, unquoted := false, false
	for {
		t := subjTrimLeft(s)
		if n := subjPrefixLen(t); n > 0 {
			s, sawPrefix = t[n:], true
			continue
		}
		if sawPrefix && !unquoted {
			if inner, ok := subjUnquote(subjTrimRight(t)); ok {
				s, unquoted = inner, true
				continue
			}
		}
		return s
	}
}

// subjPrefixLen returns the length of the reply/forward prefix at the start
// of s, with the colon, or 0: a prefix word, an optional counter "[2]" or
// "(2)" or "^2", optional whitespace, and ':' or '：'.
func subjPrefixLen(s string) int {
	i := 0
	for i < len(s) && i < 4 && isASCIILetter(s[i]) {
		i++
	}
	if i == 0 || i == len(s) || isASCIILetter(s[i]) {
		return 0
	}
	// Roundup's refwd_re words (fw, fwd, re, aw, sv, ang) and the French
	// "tr" (transféré).
	switch strings.ToLower(s[:i]) {
	case "re", "fwd", "fw", "aw", "sv", "ang", "tr":
	default:
		return 0
	}
	// Counter: Re[2]:, Re(2):, Re^2:
	if i < len(s) && (s[i] == '[' || s[i] == '(' || s[i] == '^') {
		open := s[i]
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j > i+1 {
			switch {
			case open == '^':
				i = j
			case open == '[' && j < len(s) && s[j] == ']', open == '(' && j < len(s) && s[j] == ')':
				i = j + 1
			}
		}
	}
	i = len(s) - len(subjTrimLeft(s[i:])) // "RE :"
	switch {
	case strings.HasPrefix(s[i:], ":"):
		return i + 1
	case strings.HasPrefix(s[i:], "："): // fullwidth colon, CJK mailers
		return i + len("：")
	}
	return 0
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// subjUnquote returns s without one pair of enclosing quotes. The pair is
// only taken as enclosing when the first quote inside (if any) opens a
// nested quotation — at the start or after a space — so `"foo" and "bar"`
// is left alone while `"[issue3] the "foo" bug"` is unquoted.
func subjUnquote(s string) (string, bool) {
	// The quote pairs mailers put around a subject they answer.
	for _, q := range [...][2]string{{`"`, `"`}, {"“", "”"}} {
		if len(s) < len(q[0])+len(q[1]) || !strings.HasPrefix(s, q[0]) || !strings.HasSuffix(s, q[1]) {
			continue
		}
		inner := s[len(q[0]) : len(s)-len(q[1])]
		i := strings.Index(inner, q[1])
		if q[0] != q[1] {
			// Distinct open/close marks: the first close must not come
			// before the first open.
			if j := strings.Index(inner, q[0]); i >= 0 && (j < 0 || i < j) {
				continue
			}
			return inner, true
		}
		if i > 0 {
			r, _ := utf8.DecodeLastRuneInString(inner[:i])
			if !unicode.IsSpace(r) {
				continue
			}
		}
		return inner, true
	}
	return "", false
}

// subjFindDesignator returns the span of the first [issue] or [issueN]
// bracket of t. bad, when not "", says why a designator-shaped bracket
// cannot name an issue; the span is then not ok.
func subjFindDesignator(t string) (span subjSpan, id int64, isNew bool, bad string) {
	for off := 0; off < len(t); {
		open := strings.IndexByte(t[off:], '[')
		if open < 0 {
			break
		}
		open += off
		end := strings.IndexAny(t[open+1:], "[]")
		if end < 0 {
			break
		}
		end += open + 1
		if t[end] == '[' { // not innermost: look again from the new '['
			off = end
			continue
		}
		off = end + 1
		inner := strings.TrimSpace(t[open+1 : end])
		if len(inner) < len("issue") || !strings.EqualFold(inner[:len("issue")], "issue") {
			continue
		}
		num := strings.TrimSpace(inner[len("issue"):])
		if num == "" {
			return subjSpan{open, end + 1, true}, 0, true, ""
		}
		if strings.TrimLeft(num, "0123456789") != "" {
			continue // [issues], [issue tracker], [issue-12]: title text
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 {
			return subjSpan{}, 0, false, fmt.Sprintf("%q names no issue: issue numbers start at 1 (write [issue123], or [issue] for a new issue)", t[open:end+1])
		}
		return subjSpan{open, end + 1, true}, n, false, ""
	}
	return subjSpan{}, 0, false, ""
}

// subjIsJunk reports whether s consists only of what mailing lists and
// mailers put before a designator: blanks, bracketed list tags,
// reply/forward prefixes and quotes.
func subjIsJunk(s string) bool {
	for {
		s = subjTrimLeft(s)
		if s == "" {
			return true
		}
		if n := subjPrefixLen(s); n > 0 {
			s = s[n:]
			continue
		}
		if s[0] == '[' {
			end := strings.IndexAny(s[1:], "[]")
			if end < 0 || s[1+end] != ']' {
				return false
			}
			s = s[end+2:]
			continue
		}
		trimmed := strings.TrimLeft(s, `"“”`)
		if trimmed == s {
			return false
		}
		s = trimmed
	}
}

// subjFindSuffix returns the span and changes of the suffix of t: its last
// bracket, or the one just before the designator dsg when dsg ends t. bad,
// when not "", says why a bracket with '=' is not a valid suffix; the span
// is then not ok and the bracket is title text.
func subjFindSuffix(t string, dsg subjSpan) (span subjSpan, props []PropChange, bad string) {
	end := len(subjTrimRight(t))
	if dsg.ok && dsg.end == end {
		end = len(subjTrimRight(t[:dsg.start]))
	}
	if end == 0 || t[end-1] != ']' {
		return subjSpan{}, nil, ""
	}
	open := strings.LastIndexAny(t[:end-1], "[]")
	if open < 0 || t[open] != '[' {
		return subjSpan{}, nil, ""
	}
	if dsg.ok && open >= dsg.start && open < dsg.end {
		return subjSpan{}, nil, ""
	}
	inner := t[open+1 : end-1]
	if !strings.Contains(inner, "=") {
		return subjSpan{}, nil, "" // [Fwd: foo], [SOLVED]: title text
	}
	props, bad = parseSuffix(inner)
	if bad != "" {
		return subjSpan{}, nil, fmt.Sprintf("%s in %q; write the properties as [status=resolved;priority=urgent] or [nosy=+alice@example.org,-bob@example.org]", bad, t[open:end])
	}
	return subjSpan{open, end, true}, props, ""
}

// parseSuffix parses the inside of a suffix bracket. bad, when not "", is
// the first problem found.
func parseSuffix(inner string) (props []PropChange, bad string) {
	for item := range strings.SplitSeq(inner, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue // "[status=resolved;]"
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Sprintf("%q is not of the form name=value", item)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !subjValidName(name) {
			if name == "" {
				return nil, fmt.Sprintf("%q has no property name before '='", item)
			}
			return nil, fmt.Sprintf("%q is not a property name", name)
		}
		if strings.Contains(value, "=") {
			return nil, fmt.Sprintf("%q has more than one '=' (separate properties with ';')", item)
		}
		pc := PropChange{Name: strings.ToLower(name), Value: value}
		if pc.IsMulti() {
			items := strings.Split(value, ",")
			if value == "" {
				items = nil
			}
			var err string
			pc.Set, pc.Add, pc.Remove, err = subjListChange(items)
			if err != "" {
				return nil, fmt.Sprintf("%s: %s", name, err)
			}
		}
		props = append(props, pc)
	}
	if len(props) == 0 {
		return nil, "no name=value"
	}
	return props, ""
}

// subjValidName reports whether s can be a property name: letters (with
// their combining marks), digits, '_' and '-'.
func subjValidName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r) && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// subjIsMulti reports whether name (lowercase) is a multi-valued property.
func subjIsMulti(name string) bool { return name == "keyword" || name == "nosy" }

// subjListChange turns the items of a multi-valued value (already split)
// into Roundup's semantics: without any sign a full list (non-nil set),
// else additions and removals, unsigned items being additions. Items are
// trimmed; empty ones are skipped. err, when not "", names an item that is
// only a sign.
func subjListChange(items []string) (set, add, remove []string, err string) {
	signed := false
	var list []string // additions, or the full list when nothing is signed
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		switch it[0] {
		case '+', '-':
			signed = true
			v := strings.TrimSpace(it[1:])
			if v == "" {
				return nil, nil, nil, fmt.Sprintf("%q lacks a name after the sign", it)
			}
			if it[0] == '+' {
				list = append(list, v)
			} else {
				remove = append(remove, v)
			}
		default:
			list = append(list, it)
		}
	}
	if !signed {
		if list == nil {
			list = []string{}
		}
		return list, nil, nil, ""
	}
	return nil, list, remove, ""
}
