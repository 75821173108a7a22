package web

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/trackerd/trackerd/store"
)

// Mail text on the pages: addresses masked, links found, quotes folded.
// Everything here produces plain strings; html/template escapes them when
// a page is written, so no function in this file deals with HTML.

// addressRE matches an email address: a local part, "@", and a domain
// whose last label starts with a letter ("pkg@1.2.3" is a version, not an
// address; "root@localhost" is an address).
var addressRE = regexp.MustCompile(`[\p{L}\p{N}._%+!#$&'*/=?^{|}~-]+@(?:[\p{L}\p{N}-]+\.)*\p{L}[\p{L}\p{N}-]*`)

// maskAddresses replaces every email address in s by its local part and
// "@…": public pages never show a full address.
func maskAddresses(s string) string {
	if !strings.ContainsRune(s, '@') {
		return s
	}
	return addressRE.ReplaceAllStringFunc(s, maskAddress)
}

// maskAddress returns the local part of addr followed by "@…".
func maskAddress(addr string) string {
	local, _, ok := strings.Cut(addr, "@")
	if !ok {
		return addr
	}
	return local + "@…"
}

// displayName is how a person appears on a public page: the real name
// (with any address in it masked), else the masked address.
func displayName(u *store.User) string {
	if u == nil {
		return "unknown"
	}
	if n := strings.TrimSpace(u.RealName); n != "" {
		return maskAddresses(n)
	}
	return maskAddress(u.Address)
}

// segment is a piece of a line of text: plain text, or a link.
type segment struct {
	Text string
	URL  string // "" for plain text
}

// linkRE finds what becomes a link in mail text: http(s) URLs and issue
// designators ("issue123").
var linkRE = regexp.MustCompile(`https?://[^\s<>"'\x60]+|\bissue(\d{1,18})\b`)

// segments splits a line of (already masked) text into text and links.
func segments(s string) []segment {
	var out []segment
	last := 0
	for _, m := range linkRE.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[0], m[1]
		var url string
		if m[2] >= 0 {
			n, err := strconv.ParseInt(s[m[2]:m[3]], 10, 64)
			if err != nil || n <= 0 {
				continue
			}
			url = "/issue/" + strconv.FormatInt(n, 10)
		} else {
			// Sentence punctuation after a URL is not part of it.
			end = start + len(strings.TrimRight(s[start:end], ".,;:!?)]}»’”"))
			if end-start <= len("https://") {
				continue
			}
			url = s[start:end]
		}
		if start > last {
			out = append(out, segment{Text: s[last:start]})
		}
		out = append(out, segment{Text: s[start:end], URL: url})
		last = end
	}
	if last < len(s) {
		out = append(out, segment{Text: s[last:]})
	}
	return out
}

// block is a run of lines of a message: text to show, or quoted text to
// fold.
type block struct {
	Quote bool
	Lines [][]segment // one entry per line
}

// attributionRE matches the line that introduces a quote ("On Monday,
// Alice wrote:"), in the languages the reply splitter knows best.
var attributionRE = regexp.MustCompile(`(?i)(wrote|writes|schrieb|a écrit|escribió|scrisse|schreef|skrev|kirjoitti|napisał|написал|написала|寫道|写道|wrote\s+on\s+.*)\s*:\s*$`)

// textBlocks masks addresses in text and cuts it into blocks: runs of
// ">"-quoted lines (with the attribution line before them) are quote
// blocks, everything else text.
func textBlocks(text string) []block {
	text = maskAddresses(strings.ReplaceAll(strings.TrimRight(text, "\r\n\t "), "\r\n", "\n"))
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	quoted := make([]bool, len(lines))
	for i, l := range lines {
		quoted[i] = strings.HasPrefix(strings.TrimLeft(l, " \t"), ">")
	}
	for i := range lines {
		if i+1 < len(lines) && !quoted[i] && quoted[i+1] && attributionRE.MatchString(lines[i]) {
			quoted[i] = true
		}
	}
	var out []block
	for i, l := range lines {
		if len(out) == 0 || out[len(out)-1].Quote != quoted[i] {
			out = append(out, block{Quote: quoted[i]})
		}
		b := &out[len(out)-1]
		b.Lines = append(b.Lines, segments(l))
	}
	// Blank lines around a fold only add space.
	for i := range out {
		ls := out[i].Lines
		for len(ls) > 1 && len(ls[len(ls)-1]) == 0 {
			ls = ls[:len(ls)-1]
		}
		for len(ls) > 1 && len(ls[0]) == 0 {
			ls = ls[1:]
		}
		out[i].Lines = ls
	}
	return out
}

// LineCount is the number of lines in the block (a folded quote says how
// many it hides).
func (b block) LineCount() int { return len(b.Lines) }
