package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file builds MIME bodies (RFC 2045, 2046): a quoted-printable
// text/plain part and attachments in multipart/mixed.

// part is one MIME entity: its content header fields and its encoded body
// (CRLF line ends, ending in CRLF).
type part struct {
	header header
	body   []byte
}

// textPart returns s as text/plain; charset=utf-8 in quoted-printable. Line
// ends become CRLF; the encoder keeps every encoded line within 76
// characters (RFC 2045 §6.7) with soft line breaks, and encodes trailing
// white space, so the text survives any relay byte for byte. s must be
// valid UTF-8 (the store's text is); anything else is replaced.
func textPart(s string) part {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	var p part
	p.header.add("Content-Type", "text/plain; charset=utf-8")
	p.header.add("Content-Transfer-Encoding", "quoted-printable")
	p.body = b.Bytes()
	return p
}

// maxFilename bounds a file name in a header, in bytes (a common file
// system limit); longer names are shortened, keeping the extension.
const maxFilename = 255

// filename returns name cleaned for a header: no controls, no path, at
// most maxFilename bytes, never empty.
func filename(name string) string {
	name = clean(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || name == "." || name == ".." {
		name = "attachment"
	}
	if len(name) > maxFilename {
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 10 {
			ext = name[i:]
		}
		cut := maxFilename - len(ext)
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	return name
}

// dispositionValue returns `attachment; filename=…` for name (already
// passed through filename): a quoted-string when name is short plain
// ASCII, else RFC 2231 extended parameters (utf-8, percent-encoded) split
// into continuations (filename*0*=…; filename*1*=…) of a foldable size.
func dispositionValue(name string) string {
	if !needsEncoding(name) && len(name) <= maxWord {
		return mime.FormatMediaType("attachment", map[string]string{"filename": name})
	}
	const attrChars = "!#$&+-.^_`|~" // RFC 2231 attribute-char besides ALPHA / DIGIT
	var enc []string                 // one percent-encoded unit per byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(attrChars, c) >= 0) {
			enc = append(enc, string(c))
		} else {
			enc = append(enc, "%"+strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	var segs []string
	var cur strings.Builder
	cur.WriteString("utf-8''")
	for _, u := range enc {
		if cur.Len()+len(u) > maxWord {
			segs = append(segs, cur.String())
			cur.Reset()
		}
		cur.WriteString(u)
	}
	segs = append(segs, cur.String())
	var b strings.Builder
	b.WriteString("attachment")
	for i, s := range segs {
		if len(segs) == 1 {
			b.WriteString("; filename*=" + s)
		} else {
			b.WriteString("; filename*" + strconv.Itoa(i) + "*=" + s)
		}
	}
	return b.String()
}

// contentTypeValue returns the Content-Type value for a file: its media
// type with the parameters it had (charset…), and name= set to the file
// name, RFC 2047-encoded when it is not plain ASCII — not standard
// (RFC 2047 §5 excludes parameters) but what old mail readers look for
// when they ignore Content-Disposition; new ones read the RFC 2231
// filename.
func contentTypeValue(mediatype string, params map[string]string, name string) string {
	p := map[string]string{}
	for k, v := range params {
		if k != "name" && isASCIIText(v) && isASCIIText(k) {
			p[k] = v
		}
	}
	if needsEncoding(name) {
		p["name"] = encodeWords(name)
	} else {
		p["name"] = name
	}
	v := mime.FormatMediaType(mediatype, p)
	if v == "" {
		return mime.FormatMediaType("application/octet-stream", map[string]string{"name": p["name"]})
	}
	return v
}

// attachmentPart returns data as an attachment named name with media type
// ctype (a Content-Type value; unparsable or empty means
// application/octet-stream). Most types go in base64 with 76-character
// lines. message/rfc822 may only be 7bit, 8bit or binary (RFC 2046 §5.2.1):
// a 7-bit clean message goes as it is (line ends made CRLF); any other is
// sent as message/global (RFC 6532 §3.7), which allows base64 and which a
// reader that does not know it treats as an opaque file. multipart/* is
// never sent as a file (its boundary would be read as ours):
// application/octet-stream instead.
func attachmentPart(name, ctype string, data []byte) part {
	name = filename(name)
	mediatype, params, err := mime.ParseMediaType(ctype)
	if err != nil || mediatype == "" || !isASCIIText(mediatype) {
		mediatype, params = "application/octet-stream", nil
	}
	var p part
	switch {
	case mediatype == "message/rfc822" || mediatype == "message/global":
		if crlf, ok := sevenBitMessage(data); ok {
			p.header.add("Content-Type", contentTypeValue("message/rfc822", nil, name))
			p.header.add("Content-Disposition", dispositionValue(name))
			p.header.add("Content-Transfer-Encoding", "7bit")
			p.body = crlf
			return p
		}
		mediatype, params = "message/global", nil
	case strings.HasPrefix(mediatype, "multipart/") || strings.HasPrefix(mediatype, "message/"):
		mediatype, params = "application/octet-stream", nil
	}
	p.header.add("Content-Type", contentTypeValue(mediatype, params, name))
	p.header.add("Content-Disposition", dispositionValue(name))
	p.header.add("Content-Transfer-Encoding", "base64")
	p.body = base64Lines(data)
	return p
}

// sevenBitMessage returns data with every line end made CRLF, and whether
// it is 7-bit clean (RFC 2045 §2.7: no octet above 127, no NUL, lines of at
// most 998 octets).
func sevenBitMessage(data []byte) ([]byte, bool) {
	var b bytes.Buffer
	b.Grow(len(data) + len(data)/40)
	line := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == 0 || c >= 0x80:
			return nil, false
		case c == '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			b.WriteString("\r\n")
			line = 0
			continue
		case c == '\n':
			b.WriteString("\r\n")
			line = 0
			continue
		}
		line++
		if line > 998 {
			return nil, false
		}
		b.WriteByte(c)
	}
	if line > 0 {
		b.WriteString("\r\n")
	}
	return b.Bytes(), true
}

// base64Lines encodes data in base64, 76 characters a line, CRLF after
// each (RFC 2045 §6.8).
func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	b.Grow(len(enc) + len(enc)/76*2 + 2)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		b.WriteString(enc)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// newBoundary returns a random multipart boundary. It starts with "=_",
// which neither quoted-printable nor base64 output can contain, and 128
// random bits make it absent from any 7bit part we embed.
func newBoundary() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return "=_" + hex.EncodeToString(b)
}

// writeMessage writes the message's MIME header fields (after top, the
// message's own fields, already in it) and body: parts[0] alone when there
// is one part, else a multipart/mixed of them all.
func writeMessage(b *bytes.Buffer, top *header, parts []part) {
	top.add("MIME-Version", "1.0")
	if len(parts) == 1 {
		top.fields = append(top.fields, parts[0].header.fields...)
		top.writeTo(b)
		b.WriteString("\r\n")
		b.Write(parts[0].body)
		return
	}
	boundary := newBoundary()
	top.add("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	top.writeTo(b)
	b.WriteString("\r\nThis is a message in MIME format.\r\n")
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n")
		p.header.writeTo(b)
		b.WriteString("\r\n")
		b.Write(p.body)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
}
