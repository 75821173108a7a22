package notify

import (
	"bufio"
	"bytes"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                   "plain",
		"  two  spaces\t\ttabs  ": "two spaces tabs",
		"a\r\nBcc: x":             "a Bcc: x",
		"nul\x00byte":             "nul byte",
		"line\u2028sep\u0085nel":  "line sep nel",
		"bad \xff utf8":           "bad \uFFFD utf8",
		"\r\n":                    "",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMsgID(t *testing.T) {
	for in, want := range map[string]string{
		"<a@b>":                   "<a@b>",
		"a@b":                     "<a@b>",
		" <a@b> ":                 "<a@b>",
		"":                        "",
		"<>":                      "",
		"<a b@c>":                 "",
		"<a@b>\r\nBcc: x":         "",
		"<a@b><c@d>":              "",
		"<ü@b>":                   "",
		strings.Repeat("x", 2000): "",
	} {
		if got := msgID(in); got != want {
			t.Errorf("msgID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddrSpec(t *testing.T) {
	for in, want := range map[string]string{
		"a@example.org":       "a@example.org",
		"<a@example.org>":     "a@example.org",
		" a+b@example.org ":   "a+b@example.org",
		"a":                   "",
		"@example.org":        "",
		"a@":                  "",
		"a b@example.org":     "",
		"a@example.org\r\n":   "a@example.org", // trimmed
		"a@b\r\nBcc: x@y":     "",
		"\"a b\"@example.org": "",
		"ü@example.org":       "",
		"a,b@example.org":     "",
	} {
		got, err := addrSpec(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("addrSpec(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestWriteField: folding is lossless and keeps lines within 78
// characters when the words allow.
func TestWriteField(t *testing.T) {
	for _, v := range []string{
		"",
		"short",
		strings.Repeat("word ", 40) + "end",
		"<a@example.org> <b@example.org> <c@example.org> <d@example.org> <e@example.org>",
		encodeWords(strings.Repeat("日本語", 30)),
		strings.Repeat("x", 100) + " y",
	} {
		var b bytes.Buffer
		writeField(&b, "Subject", v)
		out := b.String()
		if !strings.HasSuffix(out, "\r\n") {
			t.Errorf("writeField(%q) = %q: no CRLF at the end", v, out)
		}
		if got := strings.ReplaceAll(strings.TrimSuffix(out, "\r\n"), "\r\n", ""); got != "Subject: "+v {
			t.Errorf("unfolded %q, want %q", got, "Subject: "+v)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if strings.TrimSpace(line) == "" && v != "" {
				t.Errorf("writeField(%q) wrote a blank line: %q", v, out)
			}
			if len(line) > maxLine && strings.Contains(strings.TrimSpace(line), " ") && !strings.HasPrefix(line, "Subject:") {
				t.Errorf("line %q of %d characters could have been folded", line, len(line))
			}
		}
	}
}

// TestPhrase: display names round-trip through net/mail, Go's strict
// address parser.
func TestPhrase(t *testing.T) {
	dec := &mime.WordDecoder{}
	p := &mail.AddressParser{WordDecoder: dec}
	for _, name := range []string{
		"Alice", `Quote "me" \ please`, "Alice (Example Tracker)", "Doe, John", "José Müller (Ticket-Système)",
		"日本語の名前 (トラッカー)", strings.Repeat("Wolfeschlegelsteinhausenbergerdorff", 4), "a=?utf-8?q?x?=b", "<angle@brackets>",
	} {
		h := mailbox(name, "issues@example.org")
		a, err := p.Parse(h)
		if err != nil {
			t.Errorf("mailbox(%q) = %q: %v", name, h, err)
			continue
		}
		if a.Name != clean(name) || a.Address != "issues@example.org" {
			t.Errorf("mailbox(%q) = %q, parsed as %q <%s>", name, h, a.Name, a.Address)
		}
	}
}

func TestDisposition(t *testing.T) {
	for _, name := range []string{"a.txt", "my file.pdf", `q"uote.txt`, "résumé.pdf", "日本語のファイル名.docx",
		strings.Repeat("long-name-", 20) + ".tar.gz", "semi;colon=eq.txt"} {
		v := dispositionValue(filename(name))
		disp, params, err := mime.ParseMediaType(v)
		if err != nil || disp != "attachment" || params["filename"] != filename(name) {
			t.Errorf("dispositionValue(%q) = %q, parsed %q %q %v", name, v, disp, params["filename"], err)
		}
		var b bytes.Buffer
		writeField(&b, "Content-Disposition", v)
		for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
			if len(line) > maxLine {
				t.Errorf("Content-Disposition for %q has a line of %d characters: %q", name, len(line), line)
			}
		}
	}
}

func TestFilename(t *testing.T) {
	long := strings.Repeat("é", 200) + ".pdf"
	for in, want := range map[string]string{
		"a.txt":            "a.txt",
		"../../etc/passwd": "passwd",
		`C:\Users\x\a.doc`: "a.doc",
		"":                 "attachment",
		"..":               "attachment",
		"new\r\nline.txt":  "new line.txt",
		long:               strings.Repeat("é", 125) + ".pdf",
	} {
		got := filename(in)
		if got != want || len(got) > maxFilename || !utf8.ValidString(got) {
			t.Errorf("filename(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzHeaderText: whatever text a user supplies, the header fields built
// from it are 7-bit, folded, hold exactly the fields written, and decode
// back to the cleaned text.
func FuzzHeaderText(f *testing.F) {
	for _, s := range []string{"", "plain title", "a\r\nBcc: x", "José (Müller)", "日本語", "=?utf-8?q?x?=", strings.Repeat("x", 200),
		"\"quoted\" \\ back", "tab\there", "\xff\xfe", "ends with space ", "a=?b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var h header
		h.add("Subject", unstructured(s))
		h.add("From", mailbox(s, "issues@example.org"))
		h.add("X-Tracker-Priority", unstructured(s))
		var b bytes.Buffer
		h.writeTo(&b)
		b.WriteString("\r\n")
		for _, line := range strings.SplitAfter(b.String(), "\r\n") {
			if line == "" {
				continue
			}
			body := strings.TrimSuffix(line, "\r\n")
			if strings.ContainsAny(body, "\r\n") || len(body) > maxLine {
				t.Fatalf("bad line %q in\n%s", line, b.String())
			}
			for i := 0; i < len(body); i++ {
				if body[i] < ' ' || body[i] > '~' {
					t.Fatalf("byte %#x in %q", body[i], line)
				}
			}
		}
		th, err := textproto.ReadHeader(bufio.NewReader(&b))
		if err != nil {
			t.Fatalf("ReadHeader: %v", err)
		}
		if n := th.Len(); n != 3 {
			t.Fatalf("%d fields, want 3", n)
		}
		want := clean(s)
		dec := &mime.WordDecoder{}
		if got, err := dec.DecodeHeader(th.Get("Subject")); err != nil || got != want {
			t.Errorf("Subject %q decodes to %q (%v), want %q", th.Get("Subject"), got, err, want)
		}
		a, err := (&mail.AddressParser{WordDecoder: dec}).Parse(th.Get("From"))
		if err != nil || a.Name != want || a.Address != "issues@example.org" {
			t.Errorf("From %q parses to %v (%v), want name %q", th.Get("From"), a, err, want)
		}
	})
}
