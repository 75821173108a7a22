package mailgw

import (
	"bytes"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	htmlcharset "golang.org/x/net/html/charset"
)

// part is one MIME entity (RFC 2045): its header, its still-encoded
// content and the parsed Content-Type and Content-Disposition.
type part struct {
	h         header
	body      []byte
	mediaType string // lowercased "type/subtype"
	ctParams  params
	disp      string // lowercased disposition type, "" when absent
	dParams   params
}

// newPart parses the content header fields of an entity. A missing or
// unusable Content-Type takes defaultType (RFC 2045 §5.2; RFC 2046 §5.1.5
// for digests).
func (p *parser) newPart(h header, body []byte, defaultType string) *part {
	pt := &part{h: h, body: body}
	ct, ok := h.get("content-type")
	mt, ps := parseMediaValue(ct, p.warn)
	switch {
	case !ok || mt == "":
		mt = defaultType
	case mt == "text":
		mt = "text/plain"
	case strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/"):
		p.warn(fmt.Sprintf("invalid Content-Type %q (read as %s)", truncate(clean(mt), 40), defaultType))
		mt = defaultType
	}
	pt.mediaType, pt.ctParams = mt, ps
	if v, ok := h.get("content-disposition"); ok {
		pt.disp, pt.dParams = parseMediaValue(v, p.warn)
		pt.disp = strings.TrimSuffix(pt.disp, ";")
	} else {
		pt.dParams = params{}
	}
	return pt
}

func (pt *part) major() string {
	if i := strings.IndexByte(pt.mediaType, '/'); i >= 0 {
		return pt.mediaType[:i]
	}
	return pt.mediaType
}

func (pt *part) subtype() string {
	if i := strings.IndexByte(pt.mediaType, '/'); i >= 0 {
		return pt.mediaType[i+1:]
	}
	return ""
}

func (pt *part) contentID() string {
	return clean(strings.TrimSpace(strings.Trim(strings.TrimSpace(toText(pt.h.value("content-id"))), "<>")))
}

func (pt *part) hasFilename() bool {
	_, a := pt.dParams["filename"]
	_, b := pt.ctParams["name"]
	return a || b
}

type bodyKind int

const (
	bodyNone bodyKind = iota
	bodyPlain
	bodyHTML
)

// bodyResult is the text a subtree offers as the message body.
type bodyResult struct {
	kind      bodyKind
	text      string // the plain text (for HTML: converted, once converted is set)
	html      string // for bodyHTML: the HTML
	enriched  bool   // text/enriched (ranks below text/plain in alternatives)
	converted bool   // for bodyHTML: text holds HTMLToText(html)
}

// convert fills in the text of an HTML result. Conversion is deferred
// until a result is looked at, so that an HTML alternative beside a
// usable text/plain one costs nothing.
func (r *bodyResult) convert() {
	if r.kind == bodyHTML && !r.converted {
		r.text = HTMLToText(r.html)
		r.converted = true
	}
}

// empty reports whether r offers no visible text.
func (r *bodyResult) empty() bool {
	r.convert()
	return r.kind == bodyNone || strings.TrimSpace(r.text) == ""
}

// isBodyText reports whether a leaf can be body text: text/plain,
// text/html or text/enriched that is not an attachment. Below the top
// level a part with a filename is a file too (a text attachment without a
// disposition); a single-part message is its own body unless it says
// "attachment".
func (pt *part) isBodyText(top bool) bool {
	switch pt.mediaType {
	case "text/plain", "text/html", "text/enriched", "text/richtext", "text/x-html":
	default:
		return false
	}
	if pt.disp == "attachment" {
		return false
	}
	return top || !pt.hasFilename()
}

// count charges one entity against MaxParts; false once the limit is
// reached.
func (p *parser) count() bool {
	if p.nparts >= p.lim.MaxParts {
		if !p.overflow {
			p.overflow = true
			p.warn(fmt.Sprintf("more than %d MIME parts: the rest is skipped", p.lim.MaxParts))
		}
		return false
	}
	p.nparts++
	return true
}

// walk visits an entity and its children, adds files, records what
// classification needs, and returns the body the entity offers.
func (p *parser) walk(pt *part, depth int, top, inRelated bool) bodyResult {
	if !p.count() {
		return bodyResult{}
	}
	switch {
	case pt.major() == "multipart":
		if depth >= p.lim.MaxDepth {
			if !p.tooDeep {
				p.tooDeep = true
				p.warn(fmt.Sprintf("multipart nesting deeper than %d: skipped", p.lim.MaxDepth))
			}
			return bodyResult{}
		}
		return p.walkMultipart(pt, depth)
	case pt.ctParams.get("boundary") != "" && hasDelimiter(pt.body, pt.ctParams.get("boundary")):
		// A multipart that says it is something else.
		p.warn(fmt.Sprintf("%s part with a boundary and MIME parts: read as multipart/mixed", truncate(clean(pt.mediaType), 40)))
		mixed := *pt
		mixed.mediaType = "multipart/mixed"
		return p.walkMultipart(&mixed, depth)
	case pt.isBodyText(top):
		return p.leafBody(pt)
	case pt.mediaType == "message/external-body":
		// Only a pointer to content elsewhere; the raw mail keeps it.
		return bodyResult{}
	default:
		p.addFile(pt, inRelated)
		return bodyResult{}
	}
}

func (p *parser) walkMultipart(pt *part, depth int) bodyResult {
	body := pt.body
	switch cte := firstToken(pt.h.value("content-transfer-encoding")); cte {
	case "base64", "quoted-printable":
		p.warn("multipart with Content-Transfer-Encoding " + cte)
		body = decodeTransfer(cte, body, p.warn)
	}
	if st := pt.subtype(); st == "report" {
		p.st.reportTypes = append(p.st.reportTypes, strings.ToLower(strings.TrimSpace(pt.ctParams.get("report-type"))))
	}
	boundary := pt.ctParams.get("boundary")
	raws, closed := splitMultipart(body, boundary)
	if len(raws) == 0 {
		if b := recoverBoundary(body); b != "" {
			if boundary == "" {
				p.warn("multipart without boundary parameter: boundary guessed from the body")
			} else {
				p.warn("multipart boundary not found: boundary guessed from the body")
			}
			raws, closed = splitMultipart(body, b)
		}
	}
	if len(raws) == 0 {
		if boundary == "" {
			p.warn("multipart without boundary parameter: body read as text")
		} else {
			p.warn("multipart boundary not found: body read as text")
		}
		pseudo := &part{h: nil, body: body, mediaType: "text/plain", ctParams: params{}, dParams: params{}}
		if cs, ok := pt.ctParams["charset"]; ok {
			pseudo.ctParams["charset"] = cs
		}
		r := p.leafBody(pseudo)
		if r.empty() {
			return bodyResult{}
		}
		return r
	}
	if !closed {
		p.warn("multipart without closing boundary")
	}
	def := "text/plain"
	if pt.subtype() == "digest" {
		def = "message/rfc822"
	}
	children := make([]*part, 0, len(raws))
	for _, raw := range raws {
		h, b := readHeader(raw, p.warn)
		children = append(children, p.newPart(h, b, def))
	}
	switch pt.subtype() {
	case "alternative":
		return p.walkAlternative(children, depth)
	case "related":
		return p.walkRelated(children, pt.ctParams.get("start"), depth)
	case "signed":
		var res bodyResult
		for i, ch := range children {
			if i == 0 {
				res = p.walk(ch, depth+1, false, false)
				continue
			}
			p.walkAsFile(ch, depth)
		}
		return res
	default: // mixed, report, digest, parallel, encrypted, unknown
		return p.walkMixed(children, depth)
	}
}

// walkAsFile keeps a leaf as a file whatever its type (a signature, the
// second part of multipart/signed).
func (p *parser) walkAsFile(ch *part, depth int) {
	if ch.major() == "multipart" {
		p.walk(ch, depth+1, false, false)
		return
	}
	if p.count() {
		p.addFile(ch, false)
	}
}

// walkAlternative picks the last non-empty text/plain alternative, else
// the last text/enriched, else the last HTML (RFC 2046 §5.1.4: the best
// representation comes last). Attachments inside any alternative, and
// alternatives that are not body text (text/calendar), are kept as files.
func (p *parser) walkAlternative(children []*part, depth int) bodyResult {
	var plain, enriched bodyResult
	var htmls []bodyResult
	for _, ch := range children {
		r := p.walk(ch, depth+1, false, false)
		switch {
		case r.kind == bodyHTML:
			htmls = append(htmls, r) // converted only if needed below
		case r.empty():
		case !r.enriched:
			plain = r
		default:
			enriched = r
		}
	}
	switch {
	case plain.kind != bodyNone:
		return plain
	case enriched.kind != bodyNone:
		return enriched
	}
	for i := len(htmls) - 1; i >= 0; i-- {
		if !htmls[i].empty() {
			return htmls[i]
		}
	}
	return bodyResult{}
}

// walkRelated uses the root part (the "start" parameter's Content-ID,
// else the first part) as the body and keeps the other parts as inline
// files (RFC 2387).
func (p *parser) walkRelated(children []*part, start string, depth int) bodyResult {
	root := 0
	if start = strings.Trim(strings.TrimSpace(start), "<>"); start != "" {
		for i, ch := range children {
			if ch.contentID() == start {
				root = i
				break
			}
		}
	}
	var res bodyResult
	for i, ch := range children {
		switch {
		case i == root:
			res = p.walk(ch, depth+1, false, false)
		case ch.major() == "multipart":
			p.walk(ch, depth+1, false, true)
		default:
			if p.count() {
				p.addFile(ch, true)
			}
		}
	}
	return res
}

// walkMixed uses the first part that offers body text and appends later
// inline parts of the same kind (text split around attachments); a body
// part of the other kind is kept as a file.
func (p *parser) walkMixed(children []*part, depth int) bodyResult {
	var res bodyResult
	var texts, htmls []string // collected, joined once: no quadratic appends
	for _, ch := range children {
		leaf := ch.isBodyText(false)
		r := p.walk(ch, depth+1, false, false)
		if r.empty() {
			continue
		}
		switch {
		case res.kind == bodyNone:
			res = r
		case r.kind == res.kind:
		case leaf:
			p.addFile(ch, false)
			continue
		default:
			continue
		}
		texts = append(texts, strings.Trim(r.text, "\r\n"))
		htmls = append(htmls, r.html)
	}
	if len(texts) > 1 {
		res.text = strings.Join(texts, "\n\n")
		if res.kind == bodyHTML {
			res.html = strings.Join(htmls, "\n")
		}
	}
	return res
}

// leafBody decodes a text part: transfer encoding, charset (for HTML also
// a <meta> charset when the header declares none), format=flowed, and for
// HTML and enriched text the conversion to plain text.
func (p *parser) leafBody(pt *part) bodyResult {
	data := decodeTransfer(pt.h.value("content-transfer-encoding"), pt.body, p.warn)
	cs := pt.ctParams.get("charset")
	switch pt.mediaType {
	case "text/html", "text/x-html":
		return bodyResult{kind: bodyHTML, html: p.decodeHTML(cs, data)}
	case "text/enriched", "text/richtext":
		s := normalizeNewlines(decodeCharset(cs, data, "body", p.warn))
		return bodyResult{kind: bodyPlain, enriched: true, text: enrichedToText(s)}
	}
	s := normalizeNewlines(decodeCharset(cs, data, "body", p.warn))
	if strings.EqualFold(pt.ctParams.get("format"), "flowed") {
		s = decodeFlowed(s, strings.EqualFold(pt.ctParams.get("delsp"), "yes"))
	}
	return bodyResult{kind: bodyPlain, text: s}
}

// decodeHTML decodes an HTML part: the declared charset when there is a
// real one, else a BOM or <meta> charset, else the autoDecode guess.
func (p *parser) decodeHTML(cs string, data []byte) string {
	name, _ := normCharset(cs)
	if name != "" && name != "us-ascii" {
		return decodeCharset(cs, data, "body", p.warn)
	}
	if isASCII(data) {
		return string(data)
	}
	if _, label, certain := htmlcharset.DetermineEncoding(data, "text/html"); certain && label != "" {
		return decodeCharset(label, data, "body", p.warn)
	}
	return decodeCharset(cs, data, "body", p.warn)
}

// archiveTypes are the types DMARC aggregate reports come in.
var archiveTypes = map[string]bool{
	"application/zip": true, "application/gzip": true, "application/x-gzip": true,
	"application/x-zip-compressed": true, "application/x-zip": true, "application/xml": true,
	"text/xml": true,
}

// addFile keeps a leaf as an Attachment and notes report parts for
// classification.
func (p *parser) addFile(pt *part, inRelated bool) {
	data := decodeTransfer(pt.h.value("content-transfer-encoding"), pt.body, p.warn)
	switch pt.mediaType {
	case "message/delivery-status", "message/global-delivery-status":
		p.st.dsn = true
		p.st.recipients = append(p.st.recipients, parseDSN(data)...)
	case "message/disposition-notification", "message/global-disposition-notification":
		p.st.mdn = true
	case "message/feedback-report":
		p.st.arf = true
	case "application/tlsrpt+gzip", "application/tlsrpt+json":
		p.st.tlsrpt = true
	}
	if archiveTypes[pt.mediaType] {
		p.st.archive = true
	}
	if p.fallback == nil && pt.mediaType == "text/plain" && pt.disp == "inline" {
		p.fallback = pt
	}
	a := Attachment{
		Name:      p.fileName(pt, data),
		Type:      pt.mediaType,
		Data:      data,
		Inline:    pt.disp == "inline" || inRelated && pt.disp != "attachment",
		ContentID: pt.contentID(),
	}
	if pt.mediaType == "application/octet-stream" {
		n := strings.ToLower(a.Name)
		if strings.HasSuffix(n, ".zip") || strings.HasSuffix(n, ".gz") || strings.HasSuffix(n, ".xml") {
			p.st.archive = true
		}
	}
	p.s.Files = append(p.s.Files, a)
}

// maxNameBytes caps attachment names (most filesystems allow 255 bytes).
const maxNameBytes = 200

// fileName names an attachment: Content-Disposition filename, else
// Content-Type name, else the basename of Content-Location; for a
// forwarded message its Subject; else a name made from the type.
func (p *parser) fileName(pt *part, data []byte) string {
	name := pt.dParams.text("filename", p.warn)
	if strings.TrimSpace(name) == "" {
		name = pt.ctParams.text("name", p.warn)
	}
	if strings.TrimSpace(name) == "" {
		if loc := strings.TrimSpace(toText(pt.h.value("content-location"))); loc != "" {
			loc = stripSpace(loc)
			if i := strings.IndexAny(loc, "?#"); i >= 0 {
				loc = loc[:i]
			}
			if u, err := url.PathUnescape(loc); err == nil {
				loc = u
			}
			name = path.Base(strings.ReplaceAll(loc, "\\", "/"))
			if name == "." || name == "/" {
				name = ""
			}
		}
	}
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 && strings.TrimSpace(name[i+1:]) != "" {
		name = name[i+1:] // "C:\\TEMP\\x.png", "../x": keep the last element
	}
	if n := sanitizeName(name); n != "" {
		return n
	}
	switch pt.mediaType {
	case "message/rfc822", "message/global", "message/news":
		h, _ := readHeader(data, func(string) {})
		subj := sanitizeName(unfoldText(decodeText(h.value("subject"), func(string) {})))
		if len(subj) > 100 {
			subj = truncateUTF8(subj, 100)
		}
		if subj == "" {
			subj = "forwarded-message"
		}
		return subj + ".eml"
	case "application/ms-tnef", "application/vnd.ms-tnef":
		return "winmail.dat"
	case "application/pgp-signature":
		return "signature.asc"
	case "application/pkcs7-signature", "application/x-pkcs7-signature":
		return "smime.p7s"
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		return "smime.p7m"
	}
	return fmt.Sprintf("attachment-%d.%s", len(p.s.Files)+1, extFor(pt.mediaType))
}

// extensions for generated attachment names.
var extensions = map[string]string{
	"image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/pjpeg": "jpg", "image/gif": "gif",
	"image/bmp": "bmp", "image/webp": "webp", "image/svg+xml": "svg", "image/tiff": "tif", "image/heic": "heic",
	"application/pdf": "pdf", "application/zip": "zip", "application/x-zip-compressed": "zip",
	"application/gzip": "gz", "application/x-gzip": "gz", "application/json": "json", "application/xml": "xml",
	"text/xml": "xml", "text/plain": "txt", "text/html": "html", "text/calendar": "ics", "text/csv": "csv",
	"text/vcard": "vcf", "text/x-vcard": "vcf", "text/x-diff": "diff", "text/x-patch": "patch",
	"text/enriched": "txt", "text/rfc822-headers": "txt", "message/delivery-status": "txt",
	"message/global-delivery-status": "txt", "message/disposition-notification": "txt",
	"message/feedback-report": "txt", "message/partial": "eml", "message/news": "eml", "application/pgp-encrypted": "txt",
	"application/pgp-keys": "asc", "application/msword": "doc", "application/vnd.ms-excel": "xls",
	"application/vnd.ms-powerpoint": "ppt", "application/rtf": "rtf", "audio/mpeg": "mp3", "audio/wav": "wav",
	"video/mp4": "mp4", "video/quicktime": "mov", "application/tlsrpt+gzip": "json.gz",
	"application/tlsrpt+json": "json",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   "docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         "xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
}

func extFor(mediaType string) string {
	if e, ok := extensions[mediaType]; ok {
		return e
	}
	if strings.HasPrefix(mediaType, "text/") {
		return "txt"
	}
	return "bin"
}

// sanitizeName makes a decoded filename safe to store and offer for
// download: path separators become "_", control, bidi-override and
// invisible characters go, leading dots and blanks go (no hidden files,
// no ".."), and the name is cut to maxNameBytes keeping its extension.
func sanitizeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\':
			return '_'
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return -1
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f:
			return -1
		case r == 0xfeff || r == 0x200b:
			return -1
		}
		return r
	}, clean(s))
	s = strings.TrimLeft(strings.TrimSpace(s), ". ")
	s = strings.TrimRight(s, ". ")
	if len(s) <= maxNameBytes {
		return s
	}
	ext := path.Ext(s)
	if len(ext) > 16 || !utf8.ValidString(ext) {
		ext = ""
	}
	return truncateUTF8(s[:len(s)-len(ext)], maxNameBytes-len(ext)) + ext
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// hasDelimiter reports whether body has a delimiter line for boundary.
func hasDelimiter(body []byte, boundary string) bool {
	parts, _ := splitMultipart(body, boundary)
	return len(parts) > 0
}

// splitMultipart splits a multipart body at its delimiter lines (RFC 2046
// §5.1.1): "--boundary" alone on a line (trailing blanks allowed), the
// last one followed by "--". A part's content excludes the line break
// before the next delimiter. closed is false when the closing delimiter
// is missing (the last part then runs to the end). The preamble and
// epilogue are dropped.
func splitMultipart(body []byte, boundary string) (parts [][]byte, closed bool) {
	if boundary == "" {
		return nil, false
	}
	delim := []byte("--" + boundary)
	cur := -1
	pos := 0
	for pos < len(body) {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		at := pos + i
		if at > 0 && body[at-1] != '\n' {
			pos = at + 1
			continue
		}
		restStart := at + len(delim)
		lineEnd := bytes.IndexByte(body[restStart:], '\n')
		next := len(body)
		rest := body[restStart:]
		if lineEnd >= 0 {
			rest = body[restStart : restStart+lineEnd]
			next = restStart + lineEnd + 1
		}
		isClose := bytes.HasPrefix(rest, []byte("--"))
		if !isClose && len(bytes.Trim(rest, " \t\r")) > 0 {
			pos = at + 1
			continue
		}
		if cur >= 0 {
			end := at
			if end > cur && body[end-1] == '\n' {
				end--
				if end > cur && body[end-1] == '\r' {
					end--
				}
			}
			parts = append(parts, body[cur:end])
		}
		if isClose {
			return parts, true
		}
		cur = next
		pos = next
	}
	if cur >= 0 {
		parts = append(parts, body[cur:])
	}
	return parts, false
}

// recoverBoundary guesses the boundary of a multipart whose boundary
// parameter is missing or never appears: the first "--token" line that is
// followed by a header field, or that appears at least twice and is
// followed by a blank line. "" when there is no such line.
func recoverBoundary(body []byte) string {
	tried := 0
	seen := map[string]bool{}
	for pos := 0; pos < len(body) && tried < 8; {
		line, next := nextLine(body, pos)
		pos = next
		if len(line) < 6 || line[0] != '-' || line[1] != '-' {
			continue
		}
		cand := bytes.TrimRight(line[2:], " \t")
		if len(cand) > 100 || bytes.ContainsAny(cand, " \t") {
			continue
		}
		cand = bytes.TrimSuffix(cand, []byte("--"))
		if len(cand) < 4 || !bytes.ContainsAny(cand, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") || seen[string(cand)] {
			continue
		}
		seen[string(cand)] = true
		tried++
		following, _ := nextLine(body, next)
		if next < len(body) && isFieldLine(following) {
			return string(cand)
		}
		if next < len(body) && isBlank(following) && bytes.Count(body, append([]byte("\n--"), cand...)) >= 2 {
			return string(cand)
		}
	}
	return ""
}
