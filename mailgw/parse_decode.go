package mailgw

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// charsetAliases maps labels that golang.org/x/text does not know, or
// knows in a way that is wrong for mail, to the name decodeCharset uses.
//
// ISO-8859-1 (and US-ASCII with 8-bit data in it) is read as
// windows-1252, as browsers and MUAs do: mail labelled latin-1 routinely
// carries windows-1252 quotes and dashes in 0x80-0x9F, where ISO-8859-1
// has only unprintable C1 controls.
var charsetAliases = map[string]string{
	"iso-8859-1": "windows-1252", "iso8859-1": "windows-1252", "iso_8859-1": "windows-1252",
	"latin1": "windows-1252", "latin-1": "windows-1252", "l1": "windows-1252", "cp819": "windows-1252",
	"ibm819": "windows-1252", "8859-1": "windows-1252", "iso-ir-100": "windows-1252",
	"iso_8859-1:1987": "windows-1252", "ansi_x3.110-1983": "windows-1252", "cp1252": "windows-1252",
	"x-cp1252": "windows-1252", "windows-1252": "windows-1252",

	"us-ascii": "us-ascii", "ascii": "us-ascii", "ansi_x3.4-1968": "us-ascii", "ansi_x3.4-1986": "us-ascii", "ansi-x3.4-1968": "us-ascii",
	"iso646-us": "us-ascii", "iso-646": "us-ascii", "us": "us-ascii", "iso-ir-6": "us-ascii", "cp367": "us-ascii",
	"ibm367": "us-ascii", "csascii": "us-ascii", "7bit": "us-ascii",

	"utf-8": "utf-8", "utf8": "utf-8", "x-utf8": "utf-8", "x-utf-8": "utf-8", "utf-8n": "utf-8",

	"utf-7": "utf-7", "utf7": "utf-7", "x-utf-7": "utf-7", "unicode-1-1-utf-7": "utf-7", "csunicode11utf7": "utf-7",

	"ks_c_5601-1987": "euc-kr", "ks_c_5601": "euc-kr", "ks_c_5601-1989": "euc-kr", "ksc5601": "euc-kr",
	"ksc_5601": "euc-kr", "x-euc-kr": "euc-kr", "euc_kr": "euc-kr", "cp949": "euc-kr", "windows-949": "euc-kr",
	"uhc": "euc-kr",

	"cp932": "shift_jis", "ms932": "shift_jis", "windows-31j": "shift_jis", "x-ms-cp932": "shift_jis",
	"shift-jis": "shift_jis", "x-sjis": "shift_jis", "sjis": "shift_jis",
	"iso-2022-jp-1": "iso-2022-jp", "iso-2022-jp-2": "iso-2022-jp", "iso-2022-jp-3": "iso-2022-jp",
	"euc_jp": "euc-jp", "x-euc-jp": "euc-jp",

	"x-gbk": "gbk", "cp936": "gbk", "ms936": "gbk", "windows-936": "gbk", "gb_2312-80": "gbk",
	"x-gb2312": "gbk", "euc-cn": "gbk", "x-euc-cn": "gbk",
	"x-big5": "big5", "cp950": "big5", "big5-hkscs": "big5",

	"cp1250": "windows-1250", "cp1251": "windows-1251", "cp1253": "windows-1253", "cp1254": "windows-1254",
	"cp1255": "windows-1255", "cp1256": "windows-1256", "cp1257": "windows-1257", "cp1258": "windows-1258",
	"x-cp1250": "windows-1250", "x-cp1251": "windows-1251",
	"koi8r": "koi8-r", "koi8u": "koi8-u",

	// Labels that say "we do not know": guess.
	"": "", "unknown-8bit": "", "x-unknown": "", "unknown": "", "default": "", "none": "",
	"x-user-defined": "", "8bit": "", "binary": "", "charset": "", "x-unknown-8bit": "",
}

// normCharset lowercases and trims a charset label and resolves the
// aliases above. known is false for a label that is not in the table
// (decodeCharset then asks go-message's charset package).
func normCharset(label string) (name string, known bool) {
	l := strings.ToLower(strings.Trim(strings.TrimSpace(label), "\"'"))
	if n, ok := charsetAliases[l]; ok {
		return n, true
	}
	return l, false
}

// decodeCharset converts b from the charset labelled label to valid UTF-8.
// It never fails: an unknown label, bytes that are not in the declared
// charset (US-ASCII with 8-bit data, invalid UTF-8) and decoder errors are
// decoded best effort — as UTF-8 where the bytes are mostly UTF-8, else
// as windows-1252 — with a note to warn that names what (body, header,
// parameter...). An empty label means "not declared": bytes that are
// ASCII or UTF-8 pass silently.
func decodeCharset(label string, b []byte, what string, warn func(string)) string {
	name, known := normCharset(label)
	switch {
	case name == "" && known:
		if isASCII(b) {
			return string(b)
		}
		s, how := autoDecode(b)
		switch {
		case label != "":
			warn(fmt.Sprintf("%s: 8-bit data with charset %q (decoded as %s)", what, truncate(label, 40), how))
		case how != "UTF-8":
			warn(fmt.Sprintf("%s: 8-bit data without a charset (decoded as %s)", what, how))
		}
		return s
	case name == "us-ascii":
		if isASCII(b) {
			return string(b)
		}
		s, how := autoDecode(b)
		warn(fmt.Sprintf("%s: declared %s but contains 8-bit data (decoded as %s)", what, label, how))
		return s
	case name == "utf-8":
		if utf8.Valid(b) {
			return string(b)
		}
		s, how := autoDecode(b)
		warn(fmt.Sprintf("%s: invalid UTF-8 (decoded as %s)", what, how))
		return s
	case name == "windows-1252":
		out, err := charmap.Windows1252.NewDecoder().Bytes(b)
		if err != nil {
			return strings.ToValidUTF8(string(b), "\uFFFD")
		}
		return string(out)
	case name == "utf-7":
		s, bad := decodeUTF7(b)
		if bad {
			warn(fmt.Sprintf("%s: malformed UTF-7", what))
		}
		return s
	}
	if strings.HasPrefix(name, "iso-2022-") && !isASCII(b) {
		// A 7-bit charset cannot hold 8-bit bytes: the label is wrong.
		s, how := autoDecode(b)
		warn(fmt.Sprintf("%s: declared %s but contains 8-bit data (decoded as %s)", what, label, how))
		return s
	}
	r, err := charset.Reader(name, bytes.NewReader(b))
	if err != nil {
		s, how := autoDecode(b)
		warn(fmt.Sprintf("%s: unknown charset %q (decoded as %s)", what, truncate(label, 40), how))
		return s
	}
	out, err := io.ReadAll(r)
	if err != nil {
		warn(fmt.Sprintf("%s: bad %s data: %v", what, name, err))
	}
	s := strings.ToValidUTF8(string(out), "\uFFFD")
	if bad := strings.Count(s, "\uFFFD"); bad > 0 && bad*4 > utf8.RuneCountInString(s) && !bytes.Contains(b, []byte("\uFFFD")) {
		// Mostly undecodable: mislabelled.
		alt, how := autoDecode(b)
		warn(fmt.Sprintf("%s: data does not match charset %q (decoded as %s)", what, truncate(label, 40), how))
		return alt
	}
	return s
}

// toTextWarn decodes undeclared raw bytes (header text outside
// encoded-words): UTF-8 when valid (RFC 6532), else the autoDecode guess
// with a warning.
func toTextWarn(s, what string, warn func(string)) string {
	if isASCIIString(s) || utf8.ValidString(s) {
		return s
	}
	out, how := autoDecode([]byte(s))
	warn(fmt.Sprintf("%s: raw 8-bit text is not UTF-8 (decoded as %s)", what, how))
	return out
}

// toText is toTextWarn without the warning, for values where one would be
// noise (message ids).
func toText(s string) string {
	return toTextWarn(s, "", func(string) {})
}

// autoDecode guesses the charset of undeclared or mislabelled bytes:
// valid UTF-8 stays; bytes with more well-formed multi-byte UTF-8
// sequences than stray bytes are UTF-8 with the stray bytes replaced by
// U+FFFD; anything else is windows-1252. how names the choice.
func autoDecode(b []byte) (s, how string) {
	if utf8.Valid(b) {
		return string(b), "UTF-8"
	}
	good, bad := 0, 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			bad++
		} else if size > 1 {
			good++
		}
		i += size
	}
	if good > bad {
		return strings.ToValidUTF8(string(b), "\uFFFD"), "UTF-8 with invalid bytes replaced"
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD"), "UTF-8 with invalid bytes replaced"
	}
	return string(out), "windows-1252"
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// b64 maps a byte to its base64 value; 0xFF marks bytes outside the
// alphabet, 0xFE "=", 0xFD whitespace.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	t['='] = 0xFE
	for _, c := range []byte(" \t\r\n\f\v") {
		t[c] = 0xFD
	}
	return t
}()

// decodeBase64Lenient decodes base64 keeping everything that decodes:
// characters outside the alphabet are skipped, "=" ends a quantum early
// (so concatenated padded blocks decode), missing padding is accepted,
// and a dangling single character is dropped. bad reports skipped
// characters or a dangling character.
func decodeBase64Lenient(src []byte) (out []byte, bad bool) {
	// Fast path: well-formed base64 in lines (the standard decoder skips
	// CR and LF).
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	if n, err := base64.StdEncoding.Decode(buf, src); err == nil {
		return buf[:n], false
	}
	out = buf[:0]
	var q [4]byte
	n := 0
	flush := func() {
		switch n {
		case 1:
			bad = true
		case 2:
			out = append(out, q[0]<<2|q[1]>>4)
		case 3:
			out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2)
		}
		n = 0
	}
	for _, c := range src {
		v := b64[c]
		switch {
		case v < 64:
			q[n] = v
			n++
			if n == 4 {
				out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
				n = 0
			}
		case v == 0xFE:
			flush()
		case v == 0xFD:
		default:
			bad = true
		}
	}
	flush()
	return out, bad
}

// decodeQP decodes quoted-printable (RFC 2045 §6.7) leniently: trailing
// blanks are transport padding, "=" at the end of a line is a soft break,
// lowercase hex is accepted, and a malformed "=" is kept as it is (bad is
// then true). Hard line breaks keep their CRLF or LF.
func decodeQP(src []byte) (out []byte, bad bool) {
	out = make([]byte, 0, len(src))
	pos := 0
	for pos < len(src) {
		i := bytes.IndexByte(src[pos:], '\n')
		var line []byte
		eol := ""
		if i < 0 {
			line = src[pos:]
			pos = len(src)
		} else {
			line = src[pos : pos+i]
			pos += i + 1
			eol = "\n"
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
				eol = "\r\n"
			}
		}
		line = bytes.TrimRight(line, " \t")
		if len(line) > 0 && line[len(line)-1] == '=' {
			line = line[:len(line)-1]
			eol = ""
		}
		for j := 0; j < len(line); j++ {
			c := line[j]
			if c == '=' {
				if j+2 < len(line) && isHex(line[j+1]) && isHex(line[j+2]) {
					out = append(out, unhex(line[j+1])<<4|unhex(line[j+2]))
					j += 2
					continue
				}
				bad = true
			}
			out = append(out, c)
		}
		out = append(out, eol...)
	}
	return out, bad
}

// decodeTransfer undoes a Content-Transfer-Encoding. Unknown encodings
// (and uuencode) are passed through as they are, with a warning.
func decodeTransfer(cte string, body []byte, warn func(string)) []byte {
	cte = strings.ToLower(strings.Trim(strings.TrimSpace(cte), "\"'"))
	if i := strings.IndexAny(cte, " \t;("); i >= 0 {
		cte = cte[:i]
	}
	switch cte {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit", "none":
		return body
	case "base64", "base-64":
		out, bad := decodeBase64Lenient(body)
		if bad {
			warn("bad base64 data (kept what decodes)")
		}
		return out
	case "quoted-printable", "quoted_printable", "qp":
		out, bad := decodeQP(body)
		if bad {
			warn("bad quoted-printable data (kept as written)")
		}
		return out
	default:
		warn(fmt.Sprintf("unknown Content-Transfer-Encoding %q (read as 8bit)", truncate(cte, 40)))
		return body
	}
}

// decodeUTF7 decodes RFC 2152 UTF-7. Bytes outside the scheme pass through
// as Latin-1; bad reports a malformed shifted sequence.
func decodeUTF7(b []byte) (string, bool) {
	var out strings.Builder
	bad := false
	for i := 0; i < len(b); {
		c := b[i]
		if c != '+' {
			if c < 0x80 {
				out.WriteByte(c)
			} else {
				out.WriteRune(rune(c))
				bad = true
			}
			i++
			continue
		}
		i++
		if i < len(b) && b[i] == '-' {
			out.WriteByte('+')
			i++
			continue
		}
		var units []uint16
		var acc uint32
		bits := 0
		for i < len(b) && b64[b[i]] < 64 {
			acc = acc<<6 | uint32(b64[b[i]])
			bits += 6
			if bits >= 16 {
				bits -= 16
				units = append(units, uint16(acc>>uint(bits)))
				acc &= 1<<uint(bits) - 1
			}
			i++
		}
		if acc != 0 {
			bad = true
		}
		out.WriteString(string(utf16.Decode(units)))
		if i < len(b) && b[i] == '-' {
			i++
		}
	}
	return strings.ToValidUTF8(out.String(), "\uFFFD"), bad
}

// normalizeNewlines turns CRLF and lone CR into LF and drops NUL.
func normalizeNewlines(s string) string {
	if !strings.ContainsAny(s, "\r\x00") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\x00", "")
}

// decodeFlowed undoes format=flowed (RFC 3676 §4): space-stuffing is
// removed and a line ending in a space is joined with the next line of the
// same quote depth (the space dropped too with delsp=yes). The signature
// separator "-- " is never joined. Quoted lines are written back as
// ">" * depth + " " + text.
func decodeFlowed(s string, delsp bool) string {
	lines := strings.Split(s, "\n")
	var out strings.Builder
	out.Grow(len(s))
	var para strings.Builder
	paraDepth := -1
	endPara := func() {
		if paraDepth < 0 {
			return
		}
		if paraDepth > 0 {
			out.WriteString(strings.Repeat(">", paraDepth))
			if para.Len() > 0 {
				out.WriteByte(' ')
			}
		}
		out.WriteString(para.String())
		out.WriteByte('\n')
		para.Reset()
		paraDepth = -1
	}
	for idx, line := range lines {
		if idx == len(lines)-1 && line == "" {
			break
		}
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		text := line[depth:]
		text = strings.TrimPrefix(text, " ")
		if paraDepth >= 0 && depth != paraDepth {
			endPara()
		}
		paraDepth = depth
		flowed := strings.HasSuffix(text, " ") && text != "-- "
		if flowed && delsp {
			text = text[:len(text)-1]
		}
		para.WriteString(text)
		if !flowed {
			endPara()
		}
	}
	endPara()
	return out.String()
}

// enrichedToText converts text/enriched (RFC 1896) to plain text: "<<" is
// "<", formatting commands go, <param> contents go, and outside <nofill> a
// single line break is a space and n>1 line breaks are n-1.
func enrichedToText(s string) string {
	var out strings.Builder
	nofill := 0
	param := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '<' && i+1 < len(s) && s[i+1] == '<':
			if param == 0 {
				out.WriteByte('<')
			}
			i += 2
		case c == '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				i = len(s)
				continue
			}
			tag := strings.ToLower(s[i+1 : i+j])
			switch tag {
			case "nofill":
				nofill++
			case "/nofill":
				if nofill > 0 {
					nofill--
				}
			case "param":
				param++
			case "/param":
				if param > 0 {
					param--
				}
			}
			i += j + 1
		case c == '\n' && nofill == 0:
			n := 0
			for i < len(s) && (s[i] == '\n' || s[i] == '\r') {
				if s[i] == '\n' {
					n++
				}
				i++
			}
			if param > 0 {
				continue
			}
			if n == 1 {
				out.WriteByte(' ')
			} else {
				out.WriteString(strings.Repeat("\n", n-1))
			}
		default:
			if param == 0 {
				out.WriteByte(c)
			}
			i++
		}
	}
	return out.String()
}
