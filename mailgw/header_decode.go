package mailgw

import (
	"strings"
)

// decodeText decodes a raw header value (or a piece of one, such as a
// display name or a filename parameter) to valid UTF-8:
//
//   - RFC 2047 encoded-words, B and Q, anywhere in the text, also inside
//     quoted strings and glued to other text, as MUAs write them;
//     whitespace between two adjacent encoded-words is dropped (§6.2) and
//     adjacent words in one charset are joined before the charset is
//     decoded, so a character split across two words survives;
//   - the rest as raw UTF-8 (RFC 6532) or, when it is not valid UTF-8, as
//     windows-1252 (raw 8-bit headers);
//   - unknown charsets and broken encodings decode best effort, with a
//     note to warn.
//
// The result keeps line breaks and control characters; callers that want
// one line use unfoldText.
func decodeText(raw string, warn func(string)) string {
	if !strings.Contains(raw, "=?") {
		return toTextWarn(raw, "header", warn)
	}
	var out strings.Builder
	var pending []byte // decoded bytes of adjacent words in pendingCS
	pendingCS := ""
	flushWords := func() {
		if pendingCS != "" || len(pending) > 0 {
			out.WriteString(decodeCharset(pendingCS, pending, "encoded-word", warn))
		}
		pending, pendingCS = nil, ""
	}
	lastWasWord := false
	lastEnd := strings.LastIndex(raw, "?=") // no encoded-word ends after it
	i := 0
	for i < len(raw) {
		j := strings.Index(raw[i:], "=?")
		if j < 0 || i+j+2 > lastEnd {
			break
		}
		start := i + j
		cs, enc, text, end, ok := parseEncodedWord(raw, start)
		if !ok {
			// Not an encoded-word: emit up to and including "=?".
			flushWords()
			out.WriteString(toTextWarn(raw[i:start+2], "header", warn))
			lastWasWord = false
			i = start + 2
			continue
		}
		gap := raw[i:start]
		if !(lastWasWord && strings.Trim(gap, " \t\r\n") == "") {
			flushWords()
			out.WriteString(toTextWarn(gap, "header", warn))
		}
		var b []byte
		if enc == 'b' {
			var bad bool
			b, bad = decodeBase64Lenient([]byte(text))
			if bad {
				warn("bad base64 in encoded-word")
			}
		} else {
			b = decodeQWord(text)
		}
		if pendingCS != cs {
			flushWords()
			pendingCS = cs
		}
		pending = append(pending, b...)
		lastWasWord = true
		i = end
	}
	flushWords()
	if i < len(raw) {
		out.WriteString(toTextWarn(raw[i:], "header", warn))
	}
	return out.String()
}

// parseEncodedWord reads "=?charset[*lang]?B|Q?text?=" at s[start:]. It
// returns the lowercased charset (language dropped, RFC 2231 §5), the
// encoding ('b' or 'q'), the encoded text and the index just past "?=".
// ok is false when there is no encoded-word at start.
func parseEncodedWord(s string, start int) (cs string, enc byte, text string, end int, ok bool) {
	p := start + 2
	window := s[p:]
	if len(window) > 65 {
		window = window[:65]
	}
	q := strings.IndexByte(window, '?')
	if q < 0 {
		return "", 0, "", start + 2, false
	}
	cs = s[p : p+q]
	if cs == "" || strings.ContainsAny(cs, " \t\r\n\"()<>") {
		return "", 0, "", start + 2, false
	}
	if k := strings.IndexByte(cs, '*'); k >= 0 {
		cs = cs[:k]
	}
	p += q + 1
	if p+2 > len(s) || s[p+1] != '?' {
		return "", 0, "", start + 2, false
	}
	switch s[p] {
	case 'b', 'B':
		enc = 'b'
	case 'q', 'Q':
		enc = 'q'
	default:
		return "", 0, "", start + 2, false
	}
	p += 2
	e := strings.Index(s[p:], "?=")
	if e < 0 {
		return "", 0, "", start + 2, false
	}
	return strings.ToLower(strings.Trim(cs, "\"'")), enc, s[p : p+e], p + e + 2, true
}

// decodeQWord decodes the "Q" encoding of RFC 2047 §4.2: "_" is a space,
// "=XX" a byte; a malformed "=" is kept as it is, and raw 8-bit bytes (an
// encoder that did not encode them) pass through to the charset decoder.
func decodeQWord(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			b = append(b, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// param is one decoded MIME parameter value. raw is the value as written
// (quotes removed); text is set when the value came from RFC 2231
// extended notation and is already UTF-8.
type param struct {
	raw    string
	text   string
	is2231 bool
}

// params are the parameters of a Content-Type or Content-Disposition value,
// by lowercased name.
type params map[string]param

// get returns a parameter's value as written, for protocol values such as
// boundary, charset and report-type.
func (ps params) get(name string) string {
	p, ok := ps[name]
	if !ok {
		return ""
	}
	if p.is2231 {
		return p.text
	}
	return p.raw
}

// text returns a parameter's value decoded for people (filenames): RFC
// 2231 values are already decoded; others may carry RFC 2047 words (not
// allowed there, written anyway) or raw 8-bit bytes.
func (ps params) text(name string, warn func(string)) string {
	p, ok := ps[name]
	if !ok {
		return ""
	}
	if p.is2231 {
		return p.text
	}
	return decodeText(p.raw, warn)
}

// parseMediaValue parses a Content-Type or Content-Disposition value:
// "type/subtype; name=value; ...". It accepts what mail carries beyond RFC
// 2045/2231: missing ";" between parameters, unterminated quotes,
// unquoted values with spaces, comments, duplicate names (the first wins)
// and RFC 2231 continuations and charsets in any order. The media type is
// lowercased; "" when absent.
func parseMediaValue(v string, warn func(string)) (string, params) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && v[i] != '(' {
		i++
	}
	mt := strings.ToLower(strings.Trim(v[:i], "\"'"))
	ps := params{}
	type seg struct {
		val     string
		encoded bool
	}
	ext := map[string]map[int]seg{}
	for i < len(v) {
		// Skip separators and comments.
		c := v[i]
		if c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' {
			i++
			continue
		}
		if c == '(' {
			i = skipComment(v, i)
			continue
		}
		// Attribute name.
		j := i
		for j < len(v) && v[j] != '=' && v[j] != ';' && v[j] != ' ' && v[j] != '\t' {
			j++
		}
		name := strings.ToLower(v[i:j])
		k := j
		for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
			k++
		}
		if k >= len(v) || v[k] != '=' {
			i = k // a bare word: ignore it
			continue
		}
		k++
		for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
			k++
		}
		var val string
		val, i = readParamValue(v, k, warn)
		if name == "" {
			continue
		}
		if star := strings.IndexByte(name, '*'); star >= 0 {
			base := name[:star]
			rest := name[star+1:]
			encoded := strings.HasSuffix(rest, "*") || rest == ""
			rest = strings.TrimSuffix(rest, "*")
			n := 0
			if rest != "" {
				num, okNum := atoiSmall(rest)
				if !okNum {
					continue
				}
				n = num
			}
			if ext[base] == nil {
				ext[base] = map[int]seg{}
			}
			if _, dup := ext[base][n]; !dup {
				ext[base][n] = seg{val, encoded}
			}
			continue
		}
		if _, dup := ps[name]; !dup {
			ps[name] = param{raw: val}
		}
	}
	for base, segs := range ext {
		var raw []byte
		cs := ""
		for n := 0; ; n++ {
			s, ok := segs[n]
			if !ok {
				if n == 0 {
					// RFC 2231 numbering must start at 0; be lenient with 1.
					if s1, ok1 := segs[1]; ok1 {
						s = s1
						n = 1
					} else {
						break
					}
				} else {
					break
				}
			}
			val := s.val
			if s.encoded {
				if n == 0 || cs == "" && len(raw) == 0 {
					if a := strings.IndexByte(val, '\''); a >= 0 {
						if b := strings.IndexByte(val[a+1:], '\''); b >= 0 {
							cs = strings.ToLower(val[:a])
							val = val[a+1+b+1:]
						}
					}
				}
				raw = append(raw, percentDecode(val)...)
			} else {
				raw = append(raw, val...)
			}
		}
		ps[base] = param{raw: string(raw), text: decodeCharset(cs, raw, "parameter", warn), is2231: true}
	}
	return mt, ps
}

// readParamValue reads a parameter value at v[k:]: a quoted string
// (backslash escapes of quote and backslash; unterminated runs to the end) or a token that may
// contain blanks up to the next ";" or the next "name=" (a missing ";").
func readParamValue(v string, k int, warn func(string)) (string, int) {
	if k < len(v) && v[k] == '"' {
		var b strings.Builder
		k++
		for k < len(v) {
			c := v[k]
			if c == '\\' && k+1 < len(v) && (v[k+1] == '"' || v[k+1] == '\\') {
				// Only \" and \\ are taken as escapes: Windows paths
				// ("C:\TEMP\x.png") are written unescaped.
				b.WriteByte(v[k+1])
				k += 2
				continue
			}
			if c == '"' {
				return b.String(), k + 1
			}
			b.WriteByte(c)
			k++
		}
		warn("unterminated quoted parameter value")
		return b.String(), k
	}
	start := k
	end := k
	for k < len(v) && v[k] != ';' {
		if v[k] == ' ' || v[k] == '\t' {
			// Does a new "name=" start after the blanks?
			m := k
			for m < len(v) && (v[m] == ' ' || v[m] == '\t') {
				m++
			}
			if m >= len(v) || v[m] == ';' || v[m] == '(' || looksLikeParam(v[m:]) {
				return strings.TrimSpace(v[start:end]), m
			}
			k = m
			continue
		}
		k++
		end = k
	}
	return strings.TrimSpace(v[start:end]), k
}

// looksLikeParam reports whether s starts with "name=" (RFC 2231 name
// syntax included).
func looksLikeParam(s string) bool {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '-' || s[i] == '_' || s[i] == '*' || s[i] == '.') {
		i++
	}
	return i > 0 && i < len(s) && s[i] == '='
}

func skipComment(v string, i int) int {
	depth := 0
	for i < len(v) {
		switch v[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return i
}

func atoiSmall(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// percentDecode decodes RFC 2231 %XX escapes; a malformed "%" is kept.
func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}
