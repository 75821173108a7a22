package mailgw

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trackerd/trackerd/internal/corpus"
)

// corpusFiles returns every .eml file of the corpus, relative to
// corpus.Dir. Without the corpus the test is skipped, or fails when CI=true.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	corpusDir := corpus.Dir(t)
	var files []string
	err := filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".eml") {
			rel, err := filepath.Rel(corpusDir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk corpus: %v", err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no .eml files in %s", corpusDir)
	}
	return files
}

// parseResult is what one guarded Parse call gave.
type parseResult struct {
	sub      *Submission
	err      error
	panicMsg string
	timedOut bool
	elapsed  time.Duration
}

// parseGuarded runs Parse in a goroutine, recovering a panic and giving up
// waiting after limit (the goroutine is then left to finish on its own).
func parseGuarded(raw []byte, limit time.Duration) parseResult {
	done := make(chan parseResult, 1)
	start := time.Now()
	go func() {
		var r parseResult
		defer func() {
			if v := recover(); v != nil {
				r.panicMsg = fmt.Sprintf("%v\n%s", v, debug.Stack())
			}
			r.elapsed = time.Since(start)
			done <- r
		}()
		r.sub, r.err = Parse(raw, Limits{})
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-done:
		return r
	case <-timer.C:
		return parseResult{timedOut: true, elapsed: limit}
	}
}

// checkClean reports strings of s that are not valid UTF-8 or hold NUL.
func checkClean(t *testing.T, s *Submission) {
	t.Helper()
	check := func(what, v string) {
		if !utf8.ValidString(v) {
			t.Errorf("%s is not valid UTF-8: %q", what, truncate(v, 200))
		}
		if strings.IndexByte(v, 0) >= 0 {
			t.Errorf("%s contains NUL", what)
		}
	}
	check("Subject", s.Subject)
	check("Text", s.Text)
	check("HTML", s.HTML)
	check("MessageID", s.MessageID)
	check("ClassReason", s.ClassReason)
	check("From.Name", s.From.Name)
	check("From.Addr", s.From.Addr)
	for _, as := range [][]Address{s.To, s.Cc, s.ReplyTo} {
		for _, a := range as {
			check("address name", a.Name)
			check("address", a.Addr)
		}
	}
	for _, f := range s.Files {
		check("file name", f.Name)
		check("file type", f.Type)
		check("content id", f.ContentID)
		if f.Name == "" {
			t.Errorf("file of type %s has no name", f.Type)
		}
		if strings.ContainsAny(f.Name, "/\\") || len(f.Name) > maxNameBytes {
			t.Errorf("file name %q not sanitized", f.Name)
		}
	}
	for _, w := range s.Warnings {
		check("warning", w)
	}
	for _, ids := range [][]string{s.InReplyTo, s.References, s.DeliveredTo, s.AuthResults} {
		for _, id := range ids {
			check("id", id)
		}
	}
}

// corpusExceptions are corpus files in replies/, html/ and charsets/ that
// are not Normal mail with text, and why.
var corpusExceptions = map[string]string{
	"html/redmine__empty_text_and_html_part.eml":                          "both the text/plain and the text/html part are empty: there is no text to find",
	"html/cpython__msg_40.eml":                                            "a text/html part that is really a multipart (boundary parameter, delimiter lines) whose only HTML part is \"<html></html>\"",
	"charsets/cpython__msg_08.eml":                                        "all four text parts (us-ascii, iso-8859-1 HTML, iso-8859-2, koi8-r) are empty; it tests charset labels only",
	"charsets/rubymail__multi_charset__japanese_attachment_long_name.eml": "the message is only a text/plain attachment (Content-Disposition: attachment) with a long RFC 2231 Japanese filename; the file is kept, there is no body text",
}

// TestCorpus parses every message of the shared corpus: no panic, no hang
// (2 s each), valid UTF-8 out, and the classification each folder
// promises.
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	counts := map[string]map[Class]int{}
	var notBounce []string
	results := map[string]*Submission{}
	for _, name := range files {
		raw, err := os.ReadFile(filepath.Join(corpus.Dir(t), name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		folder := strings.SplitN(name, "/", 2)[0]
		t.Run(name, func(t *testing.T) {
			r := parseGuarded(raw, 2*time.Second)
			switch {
			case r.panicMsg != "":
				t.Fatalf("Parse panicked: %s", r.panicMsg)
			case r.timedOut:
				t.Fatalf("Parse took more than 2s")
			case r.err != nil:
				t.Fatalf("Parse: %v", r.err)
			}
			s := r.sub
			results[name] = s
			checkClean(t, s)
			if counts[folder] == nil {
				counts[folder] = map[Class]int{}
			}
			counts[folder][s.Class]++
			reason, excepted := corpusExceptions[name]
			switch folder {
			case "bounces":
				if s.Class != Bounce {
					notBounce = append(notBounce, fmt.Sprintf("%s: %v (%s)", name, s.Class, s.ClassReason))
				}
				if s.Class == Normal {
					t.Errorf("Class = Normal, want a never-file class (Bounce)")
				}
			case "auto-replies":
				if s.Class == Normal {
					t.Errorf("Class = Normal, want a never-file class")
				}
			case "replies", "html", "charsets":
				if excepted {
					t.Logf("exception: %s", reason)
					break
				}
				if s.Class != Normal {
					t.Errorf("Class = %v (%s), want Normal", s.Class, s.ClassReason)
				}
				if strings.TrimSpace(s.Text) == "" {
					t.Errorf("Text is empty")
				}
			}
		})
	}
	// The CR-only copy of a Postfix bounce must read like the original.
	mac, bsd := results["malformed/sisimai__mac__lhost-postfix-01.eml"], results["bounces/sisimai__bsd__lhost-postfix-01.eml"]
	if mac != nil && bsd != nil {
		if mac.Class != bsd.Class || mac.ClassReason != bsd.ClassReason || mac.Subject != bsd.Subject ||
			mac.From != bsd.From || mac.Text != bsd.Text || len(mac.Files) != len(bsd.Files) ||
			fmt.Sprint(mac.Bounce) != fmt.Sprint(bsd.Bounce) {
			t.Errorf("CR-only postfix bounce differs from LF original:\nmac: %v %q %q %+v\nbsd: %v %q %q %+v",
				mac.Class, mac.ClassReason, mac.Subject, mac.Bounce, bsd.Class, bsd.ClassReason, bsd.Subject, bsd.Bounce)
		}
	} else {
		t.Errorf("postfix-01 pair missing from the corpus")
	}
	for _, nb := range notBounce {
		t.Logf("bounces/ file not classed Bounce: %s", nb)
	}
	var folders []string
	for f := range counts {
		folders = append(folders, f)
	}
	sort.Strings(folders)
	for _, f := range folders {
		var parts []string
		for c := Normal; c <= Loop; c++ {
			if n := counts[f][c]; n > 0 {
				parts = append(parts, fmt.Sprintf("%v=%d", c, n))
			}
		}
		t.Logf("%-15s %s", f, strings.Join(parts, " "))
	}
}

// TestCorpusDump prints what Parse makes of corpus files whose path
// contains $MAILGW_DUMP; a debugging aid, skipped otherwise.
func TestCorpusDump(t *testing.T) {
	pat := os.Getenv("MAILGW_DUMP")
	if pat == "" {
		t.Skip("set MAILGW_DUMP=substring to dump matching corpus files")
	}
	for _, name := range corpusFiles(t) {
		if !strings.Contains(name, pat) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(corpus.Dir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(raw, Limits{})
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		var files []string
		for _, f := range s.Files {
			files = append(files, fmt.Sprintf("%q %s %d inline=%v cid=%q", f.Name, f.Type, len(f.Data), f.Inline, f.ContentID))
		}
		t.Logf("=== %s\nclass=%v reason=%q bounce=%+v list=%v\nsubject=%q\nfrom=%+v resent=%+v to=%+v cc=%+v\nid=%q irt=%q refs=%d date=%v\nfiles=%s\nwarnings=%q\nfromHTML=%v\n--- text ---\n%s\n------------",
			name, s.Class, s.ClassReason, s.Bounce, s.ListMail, s.Subject, s.From, s.ResentFrom, s.To, s.Cc,
			s.MessageID, s.InReplyTo, len(s.References), s.Date, strings.Join(files, "\n  "), s.Warnings, s.TextFromHTML, truncate(s.Text, 1500))
	}
}

// TestCorpusKnownValues checks, on the Redmine fixtures of the corpus,
// what a person reads in them — the values Redmine's own
// test/unit/mail_handler_test.rb asserts (subjects, bodies, attachment
// names, sizes and MD5 digests).
func TestCorpusKnownValues(t *testing.T) {
	corpusFiles(t) // skips or fails when the corpus is missing
	parse := func(t *testing.T, name string) *Submission {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(corpus.Dir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatalf("Parse(%s): %v", name, err)
		}
		return s
	}
	file := func(t *testing.T, s *Submission, name string) Attachment {
		t.Helper()
		for _, f := range s.Files {
			if f.Name == name {
				return f
			}
		}
		var names []string
		for _, f := range s.Files {
			names = append(names, f.Name)
		}
		t.Fatalf("no file %q among %q", name, names)
		return Attachment{}
	}
	md5hex := func(b []byte) string {
		sum := md5.Sum(b)
		return hex.EncodeToString(sum[:])
	}
	tests := []struct {
		name  string
		check func(t *testing.T, s *Submission)
	}{
		{"charsets/redmine__gmail-iso8859-2.eml", func(t *testing.T, s *Submission) {
			if s.Subject != "Nikad više" {
				t.Errorf("Subject = %q, want %q", s.Subject, "Nikad više")
			}
			if want := "Na štriku se suši šosić."; !strings.Contains(s.Text, want) {
				t.Errorf("Text = %q, want it to contain %q", s.Text, want)
			}
		}},
		{"charsets/redmine__subject_japanese_1.eml", func(t *testing.T, s *Submission) {
			if s.Subject != "テスト" {
				t.Errorf("Subject = %q, want %q", s.Subject, "テスト")
			}
		}},
		{"charsets/redmine__body_ks_c_5601-1987.eml", func(t *testing.T, s *Submission) {
			if s.Text != "고맙습니다." {
				t.Errorf("Text = %q, want %q", s.Text, "고맙습니다.")
			}
		}},
		{"charsets/redmine__fullname_of_sender_as_utf8_encoded.eml", func(t *testing.T, s *Submission) {
			if want := (Address{Name: "Ää Öö", Addr: "foo@example.org"}); s.From != want {
				t.Errorf("From = %+v, want %+v", s.From, want)
			}
		}},
		{"charsets/redmine__invalid_utf8.eml", func(t *testing.T, s *Submission) {
			if !strings.HasPrefix(s.Text, "Здравствуйте") {
				t.Errorf("Text = %q, want it to start with %q", s.Text, "Здравствуйте")
			}
			if len(s.Warnings) == 0 {
				t.Errorf("no warning for invalid UTF-8")
			}
		}},
		{"charsets/redmine__japanese_keywords_iso_2022_jp.eml", func(t *testing.T, s *Submission) {
			if want := "Tracker: 開発"; !strings.Contains(s.Text, want) {
				t.Errorf("Text = %q, want it to contain %q", s.Text, want)
			}
		}},
		{"attachments/redmine__ticket_with_attachment.eml", func(t *testing.T, s *Submission) {
			if s.Subject != "Ticket created by email with attachment" {
				t.Errorf("Subject = %q", s.Subject)
			}
			if s.Text != "This is  a new ticket with attachments" {
				t.Errorf("Text = %q, want %q", s.Text, "This is  a new ticket with attachments")
			}
			if len(s.Files) != 1 {
				t.Fatalf("%d files, want 1", len(s.Files))
			}
			f := file(t, s, "Paella.jpg")
			if f.Type != "image/jpeg" || len(f.Data) != 10790 {
				t.Errorf("Paella.jpg: type %q size %d, want image/jpeg 10790", f.Type, len(f.Data))
			}
		}},
		{"attachments/redmine__apple_mail_with_attachment.eml", func(t *testing.T, s *Submission) {
			f := file(t, s, "paella.jpg")
			if len(f.Data) != 10790 || md5hex(f.Data) != "caaf384198bcbc9563ab5c058acd73cd" {
				t.Errorf("paella.jpg: size %d md5 %s, want 10790 caaf384198bcbc9563ab5c058acd73cd", len(f.Data), md5hex(f.Data))
			}
			if !f.Inline || f.ContentID == "" {
				t.Errorf("paella.jpg: Inline %v ContentID %q, want an inline image with a Content-ID", f.Inline, f.ContentID)
			}
		}},
		{"attachments/redmine__thunderbird_with_attachment_ja.eml", func(t *testing.T, s *Submission) {
			f := file(t, s, "テスト.txt")
			if len(f.Data) != 5 || md5hex(f.Data) != "d8e8fca2dc0f896fd7cb4cb0031ba249" {
				t.Errorf("テスト.txt: size %d md5 %s", len(f.Data), md5hex(f.Data))
			}
		}},
		{"attachments/redmine__gmail_with_attachment_ja.eml", func(t *testing.T, s *Submission) {
			f := file(t, s, "テスト.txt")
			if len(f.Data) != 5 || md5hex(f.Data) != "d8e8fca2dc0f896fd7cb4cb0031ba249" {
				t.Errorf("テスト.txt: size %d md5 %s", len(f.Data), md5hex(f.Data))
			}
		}},
		{"attachments/redmine__thunderbird_with_attachment_iso-8859-1.eml", func(t *testing.T, s *Submission) {
			f := file(t, s, strings.Repeat("ÄäÖöÜü", 11)+".png")
			if len(f.Data) != 130 || md5hex(f.Data) != "4d80e667ac37dddfe05502530f152abb" {
				t.Errorf("png: size %d md5 %s", len(f.Data), md5hex(f.Data))
			}
		}},
		{"attachments/redmine__multiple_text_parts.eml", func(t *testing.T, s *Submission) {
			for _, want := range []string{"first", "second", "third"} {
				if !strings.Contains(s.Text, want) {
					t.Errorf("Text = %q, want it to contain %q", s.Text, want)
				}
			}
			if strings.Contains(s.Text, "Plain text attachment") {
				t.Errorf("Text contains the text attachment: %q", s.Text)
			}
			f := file(t, s, "textfile.txt")
			if !strings.Contains(string(f.Data), "Plain text attachment") {
				t.Errorf("textfile.txt = %q", f.Data)
			}
			file(t, s, "1st.pdf")
			file(t, s, "2nd.pdf")
		}},
		{"attachments/redmine__ticket_with_empty_attachment.eml", func(t *testing.T, s *Submission) {
			if f := file(t, s, "response.json"); len(f.Data) != 0 {
				t.Errorf("response.json has %d bytes, want 0", len(f.Data))
			}
		}},
		{"attachments/redmine__no_subject_header.eml", func(t *testing.T, s *Submission) {
			if s.Subject != "" {
				t.Errorf("Subject = %q, want empty", s.Subject)
			}
			if f := file(t, s, "winmail.dat"); f.Type != "application/ms-tnef" {
				t.Errorf("winmail.dat type %q", f.Type)
			}
		}},
		{"attachments/redmine__smime_signature.eml", func(t *testing.T, s *Submission) {
			file(t, s, "smime.sh.txt")
			if f := file(t, s, "smime.p7s"); f.Type != "application/pkcs7-signature" {
				t.Errorf("smime.p7s type %q", f.Type)
			}
			if !strings.Contains(s.Text, "smime.sh.txt describes") {
				t.Errorf("Text = %q", s.Text)
			}
		}},
		{"html/redmine__ticket_html_only.eml", func(t *testing.T, s *Submission) {
			if s.Subject != "HTML email" {
				t.Errorf("Subject = %q", s.Subject)
			}
			if !s.TextFromHTML || !strings.HasPrefix(s.Text, "This is a html-only email.") || strings.Contains(s.Text, "<") {
				t.Errorf("TextFromHTML %v Text %q, want converted text starting %q", s.TextFromHTML, s.Text, "This is a html-only email.")
			}
		}},
		{"html/redmine__quoted_printable_utf8.eml", func(t *testing.T, s *Submission) {
			if s.Text != "Freundliche Grüsse" {
				t.Errorf("Text = %q, want %q", s.Text, "Freundliche Grüsse")
			}
		}},
		{"html/redmine__different_contents_in_text_and_html.eml", func(t *testing.T, s *Submission) {
			if s.Text != "The text part." {
				t.Errorf("Text = %q, want %q", s.Text, "The text part.")
			}
		}},
		{"html/redmine__empty_text_part.eml", func(t *testing.T, s *Submission) {
			if s.Text != "The html part." || !s.TextFromHTML {
				t.Errorf("Text = %q (from HTML %v), want %q from HTML", s.Text, s.TextFromHTML, "The html part.")
			}
		}},
		{"replies/redmine__ticket_reply.eml", func(t *testing.T, s *Submission) {
			if !strings.Contains(s.Text, "This is reply") {
				t.Errorf("Text = %q, want it to contain %q", s.Text, "This is reply")
			}
		}},
		{"replies/redmine__message_reply.eml", func(t *testing.T, s *Submission) {
			if s.Subject != "Reply via email" {
				t.Errorf("Subject = %q", s.Subject)
			}
			if len(s.InReplyTo) == 0 || len(s.References) == 0 {
				t.Errorf("InReplyTo %q References %q, want both", s.InReplyTo, s.References)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, parse(t, tc.name))
		})
	}
}
