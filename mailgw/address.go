package mailgw

import (
	"strings"
)

// Address is one mailbox from an address header.
//
// Addr is the address as written, trimmed, without angle brackets and
// without changing its case: comparing addresses (case-insensitively, as
// every user lookup must) is the caller's business. It may lack an "@"
// when the header did ("From: postoffice"), and is "" for the null
// address "<>". Name is the decoded display name or, when there is none,
// the text of an RFC 5322 comment ("addr (Real Name)"); "" when neither.
type Address struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"addr"`
}

// addrToken is one lexical element of an address header.
type addrToken struct {
	kind byte   // 'a' atom (or run of atext and dots), 'q' quoted string, 'c' comment, '<' angle-addr, or a special: , ; : @
	text string // raw bytes; for 'q', 'c' and '<' without delimiters
}

// lexAddresses splits an address header into tokens. It never fails:
// unterminated quotes, comments and angle brackets run to the end.
func lexAddresses(v string) []addrToken {
	var toks []addrToken
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '"':
			var b strings.Builder
			i++
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
				i++
			}
			i++
			toks = append(toks, addrToken{'q', b.String()})
		case c == '(':
			var b strings.Builder
			depth := 0
			for i < len(v) {
				ch := v[i]
				if ch == '\\' && i+1 < len(v) {
					b.WriteByte(v[i+1])
					i += 2
					continue
				}
				if ch == '(' {
					depth++
					if depth > 1 {
						b.WriteByte(ch)
					}
				} else if ch == ')' {
					depth--
					if depth == 0 {
						i++
						break
					}
					b.WriteByte(ch)
				} else {
					b.WriteByte(ch)
				}
				i++
			}
			toks = append(toks, addrToken{'c', b.String()})
		case c == '<':
			j := strings.IndexByte(v[i+1:], '>')
			var inner string
			if j < 0 {
				inner = v[i+1:]
				i = len(v)
			} else {
				inner = v[i+1 : i+1+j]
				i += j + 2
			}
			toks = append(toks, addrToken{'<', inner})
		case c == ',' || c == ';' || c == ':' || c == '@':
			toks = append(toks, addrToken{c, string(c)})
			i++
		case c == '>' || c == ')':
			i++ // stray closer
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t\r\n\"(<>),;:@", rune(v[j])) {
				j++
			}
			toks = append(toks, addrToken{'a', v[i:j]})
			i = j
		}
	}
	return toks
}

// parseAddressList parses an address header (From, To, Cc, Reply-To,
// Resent-From...) leniently: groups ("undisclosed-recipients:;") are
// flattened, display names are RFC 2047-decoded (also inside quotes, as
// many MUAs write them), a source route is dropped, comments give the name
// when there is no display name, a bare "Name addr@host" without brackets
// is understood, and empty elements (a trailing comma) are skipped.
func parseAddressList(v string, warn func(string)) []Address {
	toks := lexAddresses(v)
	var out []Address
	var cur []addrToken
	end := func() {
		if a, ok := mailboxFromTokens(cur, warn); ok {
			out = append(out, a)
		}
		cur = cur[:0]
	}
	for k, t := range toks {
		switch t.kind {
		case ',', ';':
			end()
		case ':':
			// "group-name:" — unless it is inside an address, which ':'
			// cannot be outside angle brackets; drop what came before.
			hasAngle := false
			for _, c := range cur {
				if c.kind == '<' {
					hasAngle = true
				}
			}
			if !hasAngle {
				cur = cur[:0]
			}
		default:
			cur = append(cur, toks[k])
		}
	}
	end()
	return out
}

// mailboxFromTokens builds one Address from the tokens of one list
// element; ok is false for an element with nothing in it.
func mailboxFromTokens(toks []addrToken, warn func(string)) (Address, bool) {
	if len(toks) == 0 {
		return Address{}, false
	}
	var nameParts, comments []string
	angle := -1
	for i, t := range toks {
		if t.kind == '<' {
			angle = i
			break
		}
	}
	if angle >= 0 {
		for _, t := range toks[:angle] {
			switch t.kind {
			case 'c':
				comments = append(comments, t.text)
			default:
				nameParts = append(nameParts, t.text)
			}
		}
		for _, t := range toks[angle+1:] {
			if t.kind == 'c' {
				comments = append(comments, t.text)
			}
		}
		addr := stripComments(strings.TrimSpace(toks[angle].text))
		if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.HasPrefix(addr, "@") {
			addr = addr[i+1:] // obsolete source route "@a,@b:user@host"
		}
		return makeAddress(stripSpace(addr), joinName(nameParts), comments, warn), true
	}
	// No angle brackets: an addr-spec, maybe with comments, maybe with a
	// display name a sloppy writer left unbracketed. Comments alone are
	// no mailbox ("; (the end of the group)").
	onlyComments := true
	for _, t := range toks {
		if t.kind != 'c' {
			onlyComments = false
		}
	}
	if onlyComments {
		return Address{}, false
	}
	var spec strings.Builder
	var words []string
	for _, t := range toks {
		switch t.kind {
		case 'c':
			comments = append(comments, t.text)
		case 'q':
			words = append(words, "\""+t.text+"\"")
		default:
			words = append(words, t.text)
		}
	}
	// Join words around "@" and "." into the addr-spec; a word standing
	// alone next to the addr-spec is a name.
	var name []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if i+1 < len(words) && words[i+1] == "@" || w == "@" || i > 0 && words[i-1] == "@" {
			spec.WriteString(w)
			continue
		}
		if strings.Contains(w, "@") && spec.Len() == 0 {
			spec.WriteString(w)
			continue
		}
		name = append(name, strings.Trim(w, "\""))
	}
	addr := spec.String()
	if addr == "" {
		// No "@" at all: keep the text as the address, as written.
		addr = strings.Join(name, " ")
		name = nil
		if addr == "" {
			return Address{}, false
		}
	}
	return makeAddress(addr, strings.Join(name, " "), comments, warn), true
}

func joinName(parts []string) string {
	return strings.Join(parts, " ")
}

func makeAddress(addr, name string, comments []string, warn func(string)) Address {
	n := unfoldText(decodeText(name, warn))
	if n == "" && len(comments) > 0 {
		n = unfoldText(decodeText(strings.Join(comments, " "), warn))
	}
	// A display name that merely repeats the address in quotes is no name.
	if strings.EqualFold(strings.Trim(n, "'\" "), addr) {
		n = ""
	}
	return Address{Name: clean(n), Addr: clean(unfoldText(toTextWarn(addr, "address", warn)))}
}

// stripComments removes RFC 5322 comments ("(...)", nested, with
// escapes) from an addr-spec written inside angle brackets.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
