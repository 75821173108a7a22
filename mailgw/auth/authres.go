package auth

import (
	"bytes"
	"errors"
	"slices"
	"strings"
)

// HeaderName is the field trackerd writes and reads (RFC 8601).
const HeaderName = "Authentication-Results"

// Field is v as one Authentication-Results header field, folded at each
// result and ended by nl ("\r\n" or "\n", the mail's own line ending),
// for prepending to the mail. Values that are not plain tokens are quoted,
// and control characters replaced, so that nothing taken from the mail
// (a signature's d=) can break out of the field.
func (v *Verdict) Field(nl string) string {
	var b strings.Builder
	b.WriteString(HeaderName + ": " + quote(v.AuthservID))
	if !v.Checked {
		b.WriteString("; none" + nl)
		return b.String()
	}
	res := func(method string, r Result, props ...string) {
		b.WriteString(";" + nl + "\t" + method + "=" + quote(string(r)))
		for i := 0; i+1 < len(props); i += 2 {
			if props[i+1] != "" {
				b.WriteString(" " + props[i] + "=" + quote(props[i+1]))
			}
		}
	}
	if v.SPF != "" {
		res("spf", v.SPF, "smtp.mailfrom", v.SPFDomain)
	}
	if len(v.DKIM) == 0 {
		res("dkim", None)
	}
	for _, s := range v.DKIM {
		res("dkim", s.Result, "header.d", s.Domain, "header.s", s.Selector)
	}
	if v.DMARC != "" {
		res("dmarc", v.DMARC, "header.from", v.DMARCFrom, "policy.dmarc", v.DMARCPolicy)
	}
	b.WriteString(nl)
	return b.String()
}

// quote writes s as an RFC 2045 token when it is one, else as a quoted
// string; control characters and non-ASCII characters become "?" (not
// dropped: a value that was there must not vanish).
func quote(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
	if clean != "" && !strings.ContainsFunc(clean, func(r rune) bool { return !isTokenChar(r) }) {
		return clean
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(clean) + `"`
}

// isTokenChar: printable ASCII but space and RFC 2045's tspecials, except
// that "@" and "." are let through as RFC 8601 pvalues allow them.
func isTokenChar(r rune) bool {
	return r > 0x20 && r < 0x7f && !strings.ContainsRune(`()<>,;:\"/[]?=`, r)
}

// Header is one parsed Authentication-Results field.
type Header struct {
	AuthservID string
	Results    []MethodResult
}

// MethodResult is one resinfo: a method, its result and its properties
// ("smtp.mailfrom", "header.d", ..., lower case; "reason" too).
type MethodResult struct {
	Method string // lower case, without a method version
	Result Result // lower case
	Props  map[string]string
}

var errSyntax = errors.New("malformed Authentication-Results")

// ParseHeader reads the value of an Authentication-Results field (RFC
// 8601 §2.2): comments, quoted strings, a version after the authserv-id
// and after a method, and "none". It does not guess: a value it cannot
// read fully is an error, and the whole field is then not believed.
func ParseHeader(value string) (Header, error) {
	toks, err := lex(value)
	if err != nil {
		return Header{}, err
	}
	var h Header
	i := 0
	if i >= len(toks) || toks[i].kind != tokWord {
		return Header{}, errSyntax
	}
	h.AuthservID = toks[i].text
	i++
	if i < len(toks) && toks[i].kind == tokWord && !toks[i].quoted && isDigits(toks[i].text) {
		i++ // authres-version
	}
	if i == len(toks) {
		return Header{}, errSyntax // a result, or "none", is required
	}
	for i < len(toks) {
		if toks[i].kind != tokSemi {
			return Header{}, errSyntax
		}
		i++
		end := i
		for end < len(toks) && toks[end].kind != tokSemi {
			end++
		}
		r, none, err := parseResinfo(toks[i:end])
		if err != nil {
			return Header{}, err
		}
		if !none {
			h.Results = append(h.Results, r)
		}
		i = end
	}
	return h, nil
}

// parseResinfo reads "method[/version] = result [reason=v] [ptype.prop=v]...".
func parseResinfo(toks []token) (MethodResult, bool, error) {
	if len(toks) == 1 && toks[0].kind == tokWord && strings.EqualFold(toks[0].text, "none") {
		return MethodResult{}, true, nil
	}
	if len(toks) < 3 || toks[0].kind != tokWord || toks[0].quoted || toks[1].kind != tokEq || toks[2].kind != tokWord || toks[2].quoted {
		return MethodResult{}, false, errSyntax
	}
	method, _, _ := strings.Cut(strings.ToLower(toks[0].text), "/")
	r := MethodResult{Method: method, Result: Result(strings.ToLower(toks[2].text)), Props: map[string]string{}}
	if method == "" || r.Result == "" {
		return MethodResult{}, false, errSyntax
	}
	if r.Result == "hardfail" { // RFC 5451's name, still written by some
		r.Result = Fail
	}
	rest := toks[3:]
	for len(rest) > 0 {
		if len(rest) < 3 || rest[0].kind != tokWord || rest[0].quoted || rest[1].kind != tokEq || rest[2].kind != tokWord {
			return MethodResult{}, false, errSyntax
		}
		name := strings.ToLower(rest[0].text)
		val := rest[2].text
		rest = rest[3:]
		// Base64 padding of header.b (RFC 6008) lexes as "=" tokens that
		// follow the value with no space between.
		for len(rest) > 0 && rest[0].kind == tokEq && rest[0].adjacent {
			val += "="
			rest = rest[1:]
		}
		if name != "reason" && !strings.Contains(name, ".") {
			return MethodResult{}, false, errSyntax
		}
		if _, dup := r.Props[name]; !dup {
			r.Props[name] = val
		}
	}
	return r, false, nil
}

func isDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

type tokKind int

const (
	tokWord tokKind = iota
	tokSemi
	tokEq
)

type token struct {
	kind     tokKind
	text     string
	quoted   bool // a quoted-string
	adjacent bool // no space or comment before it
}

// maxTokens bounds the work on one field.
const maxTokens = 4096

// lex splits an Authentication-Results value into words, quoted strings,
// ";" and "=", dropping whitespace and (nested) comments (RFC 5322 §3.2.2).
func lex(s string) ([]token, error) {
	var toks []token
	adjacent := false
	for i := 0; i < len(s); {
		if len(toks) > maxTokens {
			return nil, errSyntax
		}
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
			adjacent = false
		case c == '(':
			depth := 0
			for ; i < len(s); i++ {
				switch s[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			if depth != 0 {
				return nil, errSyntax
			}
			i++
			adjacent = false
		case c == ')':
			return nil, errSyntax
		case c == ';':
			toks = append(toks, token{kind: tokSemi, adjacent: adjacent})
			i++
			adjacent = true
		case c == '=':
			toks = append(toks, token{kind: tokEq, adjacent: adjacent})
			i++
			adjacent = true
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, errSyntax
			}
			toks = append(toks, token{kind: tokWord, text: b.String(), quoted: true, adjacent: adjacent})
			adjacent = true
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n();=\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: s[i:j], adjacent: adjacent})
			i = j
			adjacent = true
		}
	}
	return toks, nil
}

// known is r when it is a result trackerd knows, else permerror (an
// unknown result is not a pass).
func known(r Result) Result {
	switch r {
	case None, Pass, Fail, SoftFail, Neutral, Policy, TempError, PermError:
		return r
	}
	return PermError
}

// verdictOf folds parsed headers (topmost first) into a verdict: the
// first SPF and DMARC result, every DKIM result.
func verdictOf(hs []Header) Verdict {
	var v Verdict
	for _, h := range hs {
		if v.AuthservID == "" {
			v.AuthservID = h.AuthservID
		}
		if len(h.Results) > 0 { // "none": nothing was checked
			v.Checked = true
		}
		for _, r := range h.Results {
			r.Result = known(r.Result)
			switch r.Method {
			case "spf":
				if v.SPF == "" {
					v.SPF = r.Result
					v.SPFDomain = Domain(r.Props["smtp.mailfrom"])
					if v.SPFDomain == "" {
						v.SPFDomain = Domain(r.Props["smtp.helo"])
					}
				}
			case "dkim":
				if r.Result == None {
					continue
				}
				d := r.Props["header.d"]
				if d == "" {
					d = r.Props["header.i"]
				}
				v.DKIM = append(v.DKIM, Signature{Result: r.Result, Domain: Domain(d), Selector: r.Props["header.s"]})
			case "dmarc":
				if v.DMARC == "" {
					v.DMARC = r.Result
					v.DMARCFrom = Domain(r.Props["header.from"])
					v.DMARCPolicy = r.Props["policy.dmarc"]
				}
			}
		}
	}
	return v
}

// Read judges a mail that came through a poller or an MTA by its own
// Authentication-Results headers (DESIGN §5): only the topmost ones,
// written by a host whose authserv-id is in trusted. Reading goes down
// the header from the top; it stops at the first Authentication-Results
// field of an authserv-id not in trusted (or one that cannot be read),
// and, once a trusted one was read, at the next Received field (where the
// trusted host's own additions end and what the sender wrote begins). So
// a trusted-looking header below an untrusted one, or below the trusted
// host's Received line, is never believed. With nothing believed the
// verdict is unchecked.
func Read(raw []byte, trusted []string) Verdict {
	var hs []Header
	eachField(raw, func(name, value string) bool {
		switch {
		case strings.EqualFold(name, HeaderName):
			h, err := ParseHeader(value)
			if err != nil || !slices.ContainsFunc(trusted, func(id string) bool { return strings.EqualFold(id, h.AuthservID) }) {
				return false
			}
			hs = append(hs, h)
		case strings.EqualFold(name, "Received") && len(hs) > 0:
			return false
		}
		return true
	})
	return verdictOf(hs)
}

// ReadOwn reads the Authentication-Results field that trackerd's
// listener put first in an archived mail: when raw's first field is one
// with authservID, it returns the verdict and the mail as received,
// without that field. ok is false otherwise (raw is returned as it is).
func ReadOwn(raw []byte, authservID string) (v Verdict, rest []byte, ok bool) {
	end := fieldEnd(raw)
	if end < 0 {
		return Verdict{}, raw, false
	}
	name, value, found := strings.Cut(string(raw[:end]), ":")
	if !found || !strings.EqualFold(name, HeaderName) {
		return Verdict{}, raw, false
	}
	h, err := ParseHeader(value)
	if err != nil || !strings.EqualFold(h.AuthservID, authservID) {
		return Verdict{}, raw, false
	}
	return verdictOf([]Header{h}), raw[end:], true
}

// fieldEnd is the length of raw's first header field with its folded
// continuation lines and final line break, or -1 when raw does not start
// with a complete field.
func fieldEnd(raw []byte) int {
	if len(raw) == 0 || raw[0] == '\n' || (raw[0] == '\r' && len(raw) > 1 && raw[1] == '\n') {
		return -1 // an empty first line: the header has ended
	}
	i := 0
	for {
		nl := bytes.IndexByte(raw[i:], '\n')
		if nl < 0 {
			return -1
		}
		i += nl + 1
		if i >= len(raw) || (raw[i] != ' ' && raw[i] != '\t') {
			return i
		}
	}
}

// maxFields bounds how many header fields Read looks at.
const maxFields = 1000

// eachField calls fn with the name and unfolded value of raw's header
// fields, top down, until fn returns false, the header ends (an empty
// line) or a line is not a field.
func eachField(raw []byte, fn func(name, value string) bool) {
	for n := 0; n < maxFields && len(raw) > 0; n++ {
		end := fieldEnd(raw)
		if end < 0 {
			return
		}
		name, value, ok := strings.Cut(string(raw[:end]), ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
			return
		}
		value = strings.NewReplacer("\r\n", "", "\n", "").Replace(value)
		if !fn(name, value) {
			return
		}
		raw = raw[end:]
	}
}
