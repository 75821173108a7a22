package notify

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file builds RFC 5322 header fields from untrusted values. Every
// value that comes from user data (names, titles, status names, file
// names, Message-IDs) goes through clean, unstructured, phrase, msgID or
// addrSpec before it reaches a header, so no CR, LF or other control
// character can start a header field of its own.

// maxLine is the line length header folding aims for (RFC 5322 §2.1.1:
// SHOULD be no more than 78 characters, excluding the CRLF).
const maxLine = 78

// maxWord is the longest run of non-space ASCII kept as it is in a header
// value; a longer one is RFC 2047-encoded so that it can be folded.
// maxEncodedWord is the longest encoded-word we write (RFC 2047 §2 allows
// 75). Both are small enough that a word fits on a line after the longest
// field name it can follow ("X-Tracker-Priority: "), keeping every line
// within maxLine.
const (
	maxWord        = 56
	maxEncodedWord = 56
)

// header is a header section under construction, in field order.
type header struct {
	fields []field
}

type field struct{ name, value string }

// add appends a field. value must already be safe: printable ASCII and
// single spaces (see the helpers below).
func (h *header) add(name, value string) {
	h.fields = append(h.fields, field{name, value})
}

// writeTo writes the fields, folded, each ending in CRLF (no blank line).
func (h *header) writeTo(b *bytes.Buffer) {
	for _, f := range h.fields {
		writeField(b, f.name, f.value)
	}
}

// writeField writes "name: value" CRLF, folded at spaces so lines stay
// within maxLine where the words allow. Folding inserts CRLF before an
// existing space, so unfolding (RFC 5322 §2.2.3) gives back the value
// exactly. A continuation line always starts with a space and a word, never
// whitespace alone.
func writeField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	line := len(name) + 1
	for i, w := range strings.Split(value, " ") {
		if i > 0 && w != "" && line+1+len(w) > maxLine {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		line += 1 + len(w)
	}
	b.WriteString("\r\n")
}

// clean makes s safe as header text: invalid UTF-8 becomes U+FFFD, every
// control or line-separating character (CR, LF, TAB, NUL, U+0085, U+2028,
// U+2029 …) becomes a space, runs of white space collapse to one space, and
// the ends are trimmed. The result may still hold non-ASCII runes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// isASCIIText reports whether s is printable ASCII and spaces only.
func isASCIIText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// needsEncoding reports whether cleaned text s must be RFC 2047-encoded:
// it is not ASCII, has a word too long to fold, or holds "=?", which a
// lenient decoder (Go's among them) may take for the start of an
// encoded-word and so not show as written.
func needsEncoding(s string) bool {
	if !isASCIIText(s) || strings.Contains(s, "=?") {
		return true
	}
	for _, w := range strings.Split(s, " ") {
		if len(w) > maxWord {
			return true
		}
	}
	return false
}

// encodeWords returns s (valid UTF-8) as RFC 2047 encoded-words in
// charset utf-8, each at most maxEncodedWord characters and whole runes,
// separated by spaces, which a decoder drops between encoded-words (RFC
// 2047 §6.2), so the text decodes exactly.
//
// It uses Q encoding when at most a third of the bytes are not ASCII
// (readable in raw form), B otherwise (CJK, Cyrillic…, where Q would
// triple the length). Its Q leaves only letters, digits and "!*+-/" as
// they are (RFC 2047 §5(3)), so the words are valid in a display name as
// well as in unstructured text. (Go's mime.QEncoding leaves '(' ')' '"'
// ',' bare, which a phrase must not hold — and our From phrase always
// holds "(Tracker Name)" — and writes words up to 75 characters, too long
// for the first line of most fields.)
func encodeWords(s string) string {
	nonASCII := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			nonASCII++
		}
	}
	b64 := nonASCII*3 > len(s)
	prefix := "=?utf-8?q?"
	if b64 {
		prefix = "=?utf-8?b?"
	}
	// size is the encoded length of n raw bytes whose Q cost is q.
	size := func(n, q int) int {
		if b64 {
			return len(prefix) + (n+2)/3*4 + 2
		}
		return len(prefix) + q + 2
	}
	var words []string
	var chunk []byte // raw bytes of the word being built
	q := 0           // their Q-encoded length
	flush := func() {
		var w strings.Builder
		w.WriteString(prefix)
		if b64 {
			w.WriteString(base64.StdEncoding.EncodeToString(chunk))
		} else {
			for _, c := range chunk {
				switch {
				case c == ' ':
					w.WriteByte('_')
				case qLiteral(c):
					w.WriteByte(c)
				default:
					w.WriteByte('=')
					w.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
				}
			}
		}
		w.WriteString("?=")
		words = append(words, w.String())
		chunk, q = chunk[:0], 0
	}
	var buf [utf8.UTFMax]byte
	for _, r := range s {
		rb := buf[:utf8.EncodeRune(buf[:], r)]
		rq := 0
		for _, c := range rb {
			if c == ' ' || qLiteral(c) {
				rq++
			} else {
				rq += 3
			}
		}
		if len(chunk) > 0 && size(len(chunk)+len(rb), q+rq) > maxEncodedWord {
			flush()
		}
		chunk = append(chunk, rb...)
		q += rq
	}
	if len(chunk) > 0 {
		flush()
	}
	return strings.Join(words, " ")
}

// qLiteral reports whether c stands for itself in a Q-encoded word that
// may appear in a phrase (RFC 2047 §5(3)).
func qLiteral(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!*+-/", c) >= 0
}

// unstructured returns s as the value of an unstructured field (Subject,
// X-Tracker-Status…, RFC 5322 §3.2.5): cleaned, and RFC 2047-encoded
// when needsEncoding says so.
func unstructured(s string) string {
	s = clean(s)
	if !needsEncoding(s) {
		return s
	}
	return encodeWords(s)
}

// phrase returns s as the display-name phrase of an address (RFC 5322
// §3.2.5): a quoted-string when s is plain ASCII, else RFC 2047
// encoded-words (see encodeWords). "" for an empty name.
func phrase(s string) string {
	s = clean(s)
	if s == "" {
		return ""
	}
	if needsEncoding(s) {
		return encodeWords(s)
	}
	return `"` + quoteEscaper.Replace(s) + `"`
}

// quoteEscaper escapes a quoted-string's specials (RFC 5322 §3.2.4).
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// mailbox formats name and addr as a mailbox: `"Name" <addr>`, or `<addr>`
// when name is empty. addr must have passed addrSpec.
func mailbox(name, addr string) string {
	if p := phrase(name); p != "" {
		return p + " <" + addr + ">"
	}
	return "<" + addr + ">"
}

// maxMsgID bounds a Message-ID we are willing to repeat in a header.
const maxMsgID = 900

// msgID returns s as a msg-id in angle brackets (RFC 5322 §3.6.4), adding
// the brackets if s has none, or "" if s cannot be one: empty, longer than
// maxMsgID, or holding anything but printable ASCII without spaces and
// angle brackets inside.
func msgID(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") && len(s) >= 2 {
		s = s[1 : len(s)-1]
	}
	if s == "" || len(s) > maxMsgID {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return ""
		}
	}
	return "<" + s + ">"
}

// addrSpec checks that s is a bare address we can put in a header and an
// SMTP envelope: local@domain, printable ASCII, no white space, no angle
// brackets, quotes, commas or parentheses (a quoted local part is refused:
// rare, and not worth the risk). Surrounding angle brackets and spaces are
// dropped. Internationalised addresses (RFC 6531) are refused too: the
// mail we write is 7-bit.
func addrSpec(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", fmt.Errorf("address %q is not local@domain", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || strings.IndexByte(`<>"(),;:\[]`, c) >= 0 {
			return "", fmt.Errorf("address %q: character %q is not allowed", s, c)
		}
	}
	if len(s) > 254 {
		return "", errors.New("address longer than 254 characters")
	}
	return s, nil
}

// date formats t for a Date header (RFC 5322 §3.3), in UTC.
func date(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
}
