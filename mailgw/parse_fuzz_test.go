package mailgw

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trackerd/trackerd/internal/corpus"
)

// fuzzSeedFiles are corpus messages that seed FuzzParse: one of each
// broad shape. Nothing is copied from the corpus; when it is absent the
// seeds are just the golden files and the strings below.
var fuzzSeedFiles = []string{
	"bounces/sisimai__bsd__lhost-postfix-01.eml",
	"bounces/cpython__msg_16.eml",
	"attachments/redmine__thunderbird_with_attachment_iso-8859-1.eml",
	"attachments/rubymail__attachment_emails__attachment_message_rfc822.eml",
	"charsets/zbateson__m0006.eml",
	"charsets/redmine__japanese_keywords_iso_2022_jp.eml",
	"html/enmime__mail__html-mime-inline.eml",
	"malformed/cpython__msg_38.eml",
	"malformed/rubymail__error_emails__bad_subject.eml",
	"malformed/flanker__mailformed-headers.eml",
	"mime-structure/stalwart__rfc__007.eml",
	"replies/actionmailbox__welcome.eml",
	"auto-replies/flanker__complaints__aol.eml",
}

func FuzzParse(f *testing.F) {
	if dir, err := corpus.Find(); err == nil {
		for _, name := range fuzzSeedFiles {
			if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				f.Add(raw)
			}
		}
	}
	golden, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.eml"))
	for _, name := range golden {
		if raw, err := os.ReadFile(name); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte("From: a@b\nSubject: =?utf-8?q?x?=\n\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed\n\n--x\nContent-Type: text/html\n\n<p>a</p>\n--x--\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		start := time.Now()
		s, err := Parse(raw, Limits{MaxBytes: 1 << 20})
		if d := time.Since(start); d > 2*time.Second {
			// Wall-clock time is noisy on a loaded machine (a stalled
			// worker once took 3 s on 155 bytes that parse in 12 µs):
			// only a second slow run is a finding.
			start = time.Now()
			Parse(raw, Limits{MaxBytes: 1 << 20})
			if d2 := time.Since(start); d2 > 2*time.Second {
				t.Fatalf("Parse took %v and %v on %d bytes", d, d2, len(raw))
			}
		}
		if err != nil {
			if !errors.Is(err, ErrNotMail) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse: unexpected error %v", err)
			}
			if s != nil {
				t.Fatalf("Parse returned a Submission with error %v", err)
			}
			return
		}
		check := func(what, v string) {
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("%s not clean UTF-8: %q", what, v)
			}
		}
		check("Subject", s.Subject)
		check("Text", s.Text)
		check("HTML", s.HTML)
		check("MessageID", s.MessageID)
		check("From", s.From.Name+s.From.Addr)
		for _, as := range [][]Address{s.To, s.Cc, s.ReplyTo} {
			for _, a := range as {
				check("address", a.Name+a.Addr)
			}
		}
		for _, f := range s.Files {
			check("file name", f.Name)
			if f.Name == "" || strings.ContainsAny(f.Name, "/\\") || len(f.Name) > maxNameBytes+16 {
				t.Fatalf("bad file name %q", f.Name)
			}
		}
		for _, w := range s.Warnings {
			check("warning", w)
		}
		if len(s.Warnings) > maxWarnings+1 {
			t.Fatalf("%d warnings", len(s.Warnings))
		}
		if s.Class < Normal || s.Class > Loop {
			t.Fatalf("Class %d out of range", s.Class)
		}
		if (s.Class == Bounce) != (s.Bounce != nil) {
			t.Fatalf("Class %v with Bounce %+v", s.Class, s.Bounce)
		}
		if s.TextFromHTML != (s.HTML != "") && s.TextFromHTML {
			// HTML may legitimately be empty only if the part was empty.
			if strings.TrimSpace(s.Text) != "" {
				t.Fatalf("TextFromHTML with empty HTML but text %q", s.Text)
			}
		}
	})
}
