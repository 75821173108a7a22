package mailgw

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults for the zero fields of Limits.
const (
	DefaultMaxBytes = 25 << 20
	DefaultMaxParts = 500
	DefaultMaxDepth = 20
)

// Limits bounds the work Parse does on one message. A zero (or negative)
// field takes its default.
type Limits struct {
	// MaxBytes is the largest raw message accepted; larger input fails
	// with an error wrapping ErrTooLarge. Default 25 MiB.
	MaxBytes int64
	// MaxParts is the number of MIME entities (containers included)
	// walked; the rest of the message is skipped with a warning.
	// Default 500.
	MaxParts int
	// MaxDepth is the deepest multipart nesting walked; deeper parts are
	// skipped with a warning. Default 20.
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

var (
	// ErrTooLarge is wrapped by Parse's error for input over
	// Limits.MaxBytes.
	ErrTooLarge = errors.New("message too large")
	// ErrNotMail is wrapped by Parse's error for input that has no
	// header field at all (empty input, a bare body, binary data).
	ErrNotMail = errors.New("not a mail message")
)

// Attachment is one file of a message: a MIME part that is not the body
// text, or a forwarded message.
type Attachment struct {
	// Name is the decoded filename (Content-Disposition filename, else
	// Content-Type name, else the Content-Location basename, else made up
	// from the type as "attachment-N.ext"; "winmail.dat", "smime.p7s",
	// "signature.asc" for the usual nameless parts). A path keeps only its
	// last element; separators, control, bidi-override and invisible
	// characters and leading dots are removed; the name is at most 200
	// bytes, extension kept. A forwarded message/rfc822 is named after its
	// Subject + ".eml". Names are never empty but need not be unique.
	Name string
	// Type is the lowercased media type without parameters.
	Type string
	// Data is the content with its transfer encoding undone; for
	// message/rfc822 the forwarded message byte for byte (except that a
	// message with CR-only line endings has them turned into LF first).
	Data []byte
	// Inline is true for parts marked Content-Disposition: inline and
	// for the resources of a multipart/related body (inline images).
	Inline bool
	// ContentID is the Content-ID without angle brackets, for matching
	// "cid:" references in the HTML; "" when absent.
	ContentID string
}

// Submission is what Parse reads from one raw message. All strings are
// valid UTF-8 without NUL bytes.
type Submission struct {
	// MessageID is the Message-ID without angle brackets; "" when absent
	// or unparseable.
	MessageID string
	// InReplyTo and References are the message ids of those fields, in
	// order, without brackets.
	InReplyTo  []string
	References []string
	// Subject is decoded (RFC 2047, raw UTF-8 or 8-bit), unfolded to one
	// line and trimmed.
	Subject string
	// From is the first From address; the zero Address when there is
	// none.
	From Address
	// ResentFrom is the first address of the topmost Resent-From field
	// (the latest redirection), nil when there is none.
	ResentFrom *Address
	ReplyTo    []Address
	To, Cc     []Address
	// DeliveredTo are the Delivered-To values, topmost first.
	DeliveredTo []string
	// Date is the Date field; the zero time when absent or unparseable.
	Date time.Time
	// Text is the body chosen as text (see Parse), with "\n" line ends,
	// not stripped of quotes or signatures.
	Text string
	// TextFromHTML is true when Text was converted from HTML; HTML is
	// then that HTML (decoded to UTF-8), so that quote stripping can work
	// on the markup. HTML is "" otherwise.
	TextFromHTML bool
	HTML         string
	// Files are the attachments in message order.
	Files []Attachment
	// Class and ClassReason say whether the mail may be filed; see
	// Class. Bounce is set for Class Bounce.
	Class       Class
	ClassReason string
	Bounce      *BounceInfo
	// ListMail is true for mail with List-Id or List-Post, or
	// Precedence: list.
	ListMail bool
	// AuthResults are the raw Authentication-Results values, topmost
	// first, unfolded; trust them only from a known authserv-id.
	AuthResults []string
	// Warnings describe what was repaired or guessed while parsing.
	Warnings []string
}

const maxWarnings = 50

// parser is the state of one Parse call.
type parser struct {
	lim      Limits
	s        *Submission
	warned   map[string]bool
	nparts   int
	overflow bool // MaxParts reached
	tooDeep  bool
	st       structure
	mboxFrom string // sender of a leading mbox "From " line
	fallback *part  // first inline text/plain file: the text when nothing else is
}

func (p *parser) warn(msg string) {
	if p.warned[msg] {
		return
	}
	if p.warned == nil {
		p.warned = map[string]bool{}
	}
	p.warned[msg] = true
	switch {
	case len(p.s.Warnings) < maxWarnings:
		p.s.Warnings = append(p.s.Warnings, clean(msg))
	case len(p.s.Warnings) == maxWarnings:
		p.s.Warnings = append(p.s.Warnings, "more warnings suppressed")
	}
}

// Parse reads one raw RFC 5322 message. It is pure (no I/O) and never
// panics; it fails only for input over lim.MaxBytes (ErrTooLarge) or input
// that is not a mail at all (ErrNotMail). Everything else — broken MIME,
// unknown charsets, bad encodings, malformed headers — is decoded as well
// as it can be and described in Warnings.
//
// Line endings may be CRLF, LF or CR only (normalised first); a leading
// mbox "From " line and blank lines before the header are skipped.
//
// The text: a text/plain part is preferred; inside multipart/alternative
// the last non-empty text/plain part (RFC 2046 §5.1.4 puts the best
// last), else text/enriched, else the HTML, converted with HTMLToText
// (TextFromHTML and HTML are then set). multipart/related uses its root
// (the "start" part or the first); multipart/mixed uses its first body
// part, and further inline parts of the same kind are appended (text split
// around attachments), while a part of the other kind becomes a file.
// format=flowed text is unwrapped (RFC 3676).
//
// Everything else becomes Files: attachments, inline images, forwarded
// messages, signatures, report parts. Alternatives not chosen are not
// kept (the raw mail has them).
//
// Classification follows the rules listed on Class; the envelope sender
// is not in the message, so "null envelope sender → Bounce" is the
// caller's rule (see IsNullSender).
func Parse(raw []byte, lim Limits) (*Submission, error) {
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.MaxBytes {
		return nil, fmt.Errorf("mailgw: parse: %d bytes, limit %d: %w", len(raw), lim.MaxBytes, ErrTooLarge)
	}
	p := &parser{lim: lim, s: &Submission{}}
	data := raw
	if crOnly(data) {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
		p.warn("CR-only line endings")
	}
	data = p.skipLeading(data)
	h, body := readHeader(data, p.warn)
	if len(h) == 0 {
		return nil, fmt.Errorf("mailgw: parse: no header fields: %w", ErrNotMail)
	}
	p.readFields(h)
	top := p.newPart(h, body, "text/plain")
	res := p.walk(top, 0, true, false)
	if res.empty() && p.fallback != nil {
		// Only inline text files (text/plain with a filename): show the
		// first as the text too.
		res = p.leafBody(p.fallback)
	}
	res.convert()
	switch res.kind {
	case bodyPlain:
		p.s.Text = finishText(res.text)
	case bodyHTML:
		p.s.Text = finishText(res.text)
		p.s.HTML = clean(res.html)
		p.s.TextFromHTML = true
	}
	p.classify(h)
	return p.s, nil
}

// crOnly reports whether data uses bare CR line endings (classic Mac):
// more lone CRs than LFs in the first 64 KiB.
func crOnly(data []byte) bool {
	if len(data) > 64<<10 {
		data = data[:64<<10]
	}
	lf := bytes.Count(data, []byte("\n"))
	cr := bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n"))
	return cr > lf
}

// skipLeading drops what may precede the header: blank lines (also lines
// of blanks) and an mbox "From sender date" line, remembering its sender.
func (p *parser) skipLeading(data []byte) []byte {
	sawFrom := false
	for len(data) > 0 {
		line, next := nextLine(data, 0)
		switch {
		case isBlank(line):
			p.warn("blank lines before the header")
			data = data[next:]
		case !sawFrom && bytes.HasPrefix(line, []byte("From ")) && !isFieldLine(line):
			sawFrom = true
			if f := strings.Fields(string(line[5:])); len(f) > 0 {
				p.mboxFrom = f[0]
			}
			data = data[next:]
		default:
			return data
		}
	}
	return data
}

// readFields fills the Submission fields that come from the top header.
func (p *parser) readFields(h header) {
	s := p.s
	s.Subject = clean(unfoldText(decodeText(h.value("subject"), p.warn)))
	if v, ok := h.get("from"); ok {
		if as := parseAddressList(v, p.warn); len(as) > 0 {
			s.From = as[0]
		}
	}
	if v, ok := h.get("resent-from"); ok {
		if as := parseAddressList(v, p.warn); len(as) > 0 {
			a := as[0]
			s.ResentFrom = &a
		}
	}
	if v, ok := h.get("reply-to"); ok {
		s.ReplyTo = parseAddressList(v, p.warn)
	}
	for _, v := range h.values("to") {
		s.To = append(s.To, parseAddressList(v, p.warn)...)
	}
	for _, v := range h.values("cc") {
		s.Cc = append(s.Cc, parseAddressList(v, p.warn)...)
	}
	for _, v := range h.values("delivered-to") {
		v = strings.TrimSpace(v)
		v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
		if v = clean(unfoldText(toText(v))); v != "" {
			s.DeliveredTo = append(s.DeliveredTo, v)
		}
	}
	if v, ok := h.get("date"); ok {
		s.Date = parseDate(toText(v))
		if s.Date.IsZero() && strings.TrimSpace(v) != "" {
			p.warn("unparseable Date: " + truncate(clean(unfoldText(toText(v))), 60))
		}
	}
	s.MessageID = clean(messageID(h.value("message-id")))
	for _, v := range h.values("in-reply-to") {
		for _, id := range msgIDs(v) {
			s.InReplyTo = append(s.InReplyTo, clean(toText(id)))
		}
	}
	if v, ok := h.get("references"); ok {
		for _, id := range msgIDs(v) {
			s.References = append(s.References, clean(toText(id)))
		}
	}
	for _, v := range h.values("authentication-results") {
		s.AuthResults = append(s.AuthResults, clean(strings.TrimSpace(strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, toText(v)))))
	}
	if h.has("list-id") || h.has("list-post") || firstToken(h.value("precedence")) == "list" {
		s.ListMail = true
	}
}

// clean makes s safe to store: valid UTF-8, no NUL.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

// finishText normalises a chosen body: "\n" line ends, valid UTF-8, no
// NUL, no leading blank lines and no trailing whitespace.
func finishText(s string) string {
	s = clean(normalizeNewlines(s))
	s = strings.TrimRight(s, " \t\n")
	// Drop leading blank lines but keep the indentation of the first
	// line of text.
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 || strings.TrimSpace(s[:i]) != "" {
			break
		}
		s = s[i+1:]
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return s
}
