package mailgw

import (
	"bytes"
	"net/mail"
	"strings"
	"time"
)

// headerField is one header field as it appeared in the message: the name
// lowercased, the value unfolded (line breaks removed, the whitespace that
// began each continuation line kept) and still raw: 8-bit bytes and RFC 2047
// encoded-words are decoded only when a field is read as text.
type headerField struct {
	name  string
	value string
}

// header is a header block in message order, topmost field first.
type header []headerField

// get returns the value of the first field called name (lowercase), so that
// a duplicated single-valued field (two Subject or Content-Type lines) is
// read the way most MUAs read it.
func (h header) get(name string) (string, bool) {
	for _, f := range h {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

// value is get without the presence flag.
func (h header) value(name string) string {
	v, _ := h.get(name)
	return v
}

// values returns every value of the fields called name, topmost first.
func (h header) values(name string) []string {
	var vs []string
	for _, f := range h {
		if f.name == name {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// has reports whether a field called name is present, whatever its value.
func (h header) has(name string) bool {
	_, ok := h.get(name)
	return ok
}

// nextLine returns the line of data starting at pos without its line
// terminator ("\n" or "\r\n") and the position just past the terminator.
func nextLine(data []byte, pos int) (line []byte, next int) {
	i := bytes.IndexByte(data[pos:], '\n')
	if i < 0 {
		line = data[pos:]
		next = len(data)
	} else {
		line = data[pos : pos+i]
		next = pos + i + 1
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, next
}

// isFieldLine reports whether line starts a header field: a field name of
// printable ASCII other than ":" followed, perhaps after blanks (RFC 5322
// §4.5.1 obsolete syntax), by a colon.
func isFieldLine(line []byte) bool {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i < len(line) && line[i] == ':'
}

func isBlank(line []byte) bool {
	return len(bytes.Trim(line, " \t\r")) == 0
}

// readHeader splits data into a header block and the body that follows it.
// It is lenient in the ways real mail needs (RFC 5322 §2.2, §3.2.2):
//
//   - a first field line that begins with whitespace is read as a field;
//   - a line that is not a field and does not begin with whitespace
//     continues the previous field when that field ends in ";" or "," or
//     when the next line is a field (broken folding); otherwise the header
//     ends there and the line is the first line of the body (missing
//     separator);
//   - an empty line ends the header, and so does a line of blanks unless
//     a field follows it.
//
// When the first line is not a field at all, h is empty and body is data
// (a MIME part without a header). warn receives one note per repair.
func readHeader(data []byte, warn func(string)) (h header, body []byte) {
	pos := 0
	var cur []byte // value of the field being read
	curName := ""
	flush := func() {
		if curName != "" {
			h = append(h, headerField{name: curName, value: string(cur)})
		}
		curName, cur = "", nil
	}
	for pos < len(data) {
		line, next := nextLine(data, pos)
		switch {
		case len(line) == 0:
			flush()
			return h, data[next:]
		case isBlank(line):
			// A line of blanks is an empty continuation when a field
			// follows (seen in folded encoded-words), else the end.
			if nl, _ := nextLine(data, next); next < len(data) && isFieldLine(nl) && curName != "" {
				warn("whitespace-only line inside the header")
				break
			}
			flush()
			return h, data[next:]
		case line[0] == ' ' || line[0] == '\t':
			if curName == "" && len(h) == 0 {
				trimmed := bytes.TrimLeft(line, " \t")
				if !isFieldLine(trimmed) {
					return nil, data
				}
				warn("header starts with whitespace")
				curName, cur = splitField(trimmed)
			} else if curName != "" {
				cur = append(cur, line...)
			} // a continuation after a dropped line: nothing to attach to
		case isFieldLine(line):
			flush()
			curName, cur = splitField(line)
		default:
			if curName == "" && len(h) == 0 {
				return nil, data
			}
			prev := bytes.TrimRight(cur, " \t")
			nextIsField := false
			if next < len(data) {
				nl, _ := nextLine(data, next)
				nextIsField = isFieldLine(nl)
			}
			if curName != "" && (bytes.HasSuffix(prev, []byte(";")) || bytes.HasSuffix(prev, []byte(",")) || nextIsField) {
				warn("broken header folding")
				cur = append(cur, ' ')
				cur = append(cur, line...)
			} else {
				warn("missing blank line between header and body")
				flush()
				return h, data[pos:]
			}
		}
		pos = next
	}
	flush()
	return h, nil
}

// splitField splits a field line at its first colon; the name is
// lowercased and trimmed, the value keeps its bytes (leading blanks
// removed).
func splitField(line []byte) (string, []byte) {
	i := bytes.IndexByte(line, ':')
	name := strings.ToLower(strings.TrimRight(string(line[:i]), " \t"))
	v := bytes.TrimLeft(line[i+1:], " \t")
	return name, append([]byte(nil), v...)
}

// unfoldText turns a decoded header value into one line of text: tabs and
// line breaks become spaces, other control characters and NUL go (NUL is
// refused by PostgreSQL text columns), and the ends are trimmed.
func unfoldText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}

// msgIDs extracts the message ids written between angle brackets in a
// Message-ID, In-Reply-To or References value, in order, without the
// brackets and without any whitespace a folder put inside them. Text
// outside brackets (comments, "Your message of ...") is ignored.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i+1:], '>')
		if j < 0 {
			return ids
		}
		id := stripSpace(v[i+1 : i+1+j])
		v = v[i+1+j+1:]
		if id != "" {
			ids = append(ids, id)
		}
	}
}

// messageID returns the id of a Message-ID value: the first bracketed id,
// or a bare value without whitespace that contains "@" (a common
// omission); "" when there is neither.
func messageID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return toText(ids[0])
	}
	v = strings.TrimSpace(v)
	if v != "" && strings.Contains(v, "@") && !strings.ContainsAny(v, " \t<>") {
		return toText(v)
	}
	return ""
}

func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// dateLayouts are tried, in order, after net/mail.ParseDate fails.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Jan 2, 2006 3:04 PM",
	"Jan 2, 2006 3:04:05 PM",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"Monday, January 2, 2006 3:04 PM",
	"Mon, 2 Jan 2006 15:04:05 -0700 -0700",
	"Mon, 2 January 2006 15:04:05 -0700",
}

// parseDate reads an RFC 5322 date, then common deviations (comments,
// two-digit years, missing zones, asctime, ISO 8601). It returns the zero
// time when nothing fits.
func parseDate(v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	// Drop comments, "GMT" before numeric zones and repeated blanks.
	var b strings.Builder
	depth := 0
	for _, r := range v {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth > 0:
		default:
			b.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	s = strings.Replace(s, "GMT+", "+", 1)
	s = strings.Replace(s, "GMT-", "-", 1)
	s = strings.Replace(s, "UT ", "UTC ", 1)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
