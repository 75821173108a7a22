package mailgw

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		lim  Limits
		err  error
	}{
		{"empty", "", Limits{}, ErrNotMail},
		{"blank lines", "\n \r\n\t\n", Limits{}, ErrNotMail},
		{"bare body", "Hello,\nthis is not a mail.\n", Limits{}, ErrNotMail},
		{"binary", "\x00\x01\x02\xff", Limits{}, ErrNotMail},
		{"too large", "Subject: x\n\n" + strings.Repeat("x", 100), Limits{MaxBytes: 50}, ErrTooLarge},
	}
	for _, tc := range tests {
		s, err := Parse([]byte(tc.in), tc.lim)
		if !errors.Is(err, tc.err) || s != nil {
			t.Errorf("%s: Parse = %v, %v; want nil, %v", tc.name, s, err, tc.err)
		}
	}
	if _, err := Parse([]byte("Subject: x\n\nbody"), Limits{MaxBytes: 50}); err != nil {
		t.Errorf("Parse under MaxBytes: %v", err)
	}
}

func TestParseFields(t *testing.T) {
	raw := "Resent-From: Carol <carol@example.org>\r\n" +
		"Resent-From: Dave <dave@example.org>\r\n" +
		"Delivered-To: tracker+12@example.org\r\n" +
		"Delivered-To: <tracker@example.org>\r\n" +
		"Authentication-Results: mx.example.org;\r\n\tdmarc=pass header.from=example.org\r\n" +
		"Authentication-Results: other.example; spf=fail\r\n" +
		"From: Bob <Bob@Example.org>, second@example.org\r\n" +
		"Reply-To: list@example.org\r\n" +
		"To: tracker@example.org\r\n" +
		"To: second-to@example.org\r\n" +
		"Cc: a@example.org, B <b@example.org>\r\n" +
		"Subject:  Re:\r\n  [issue12]\tfolded\x00 subject  \r\n" +
		"Message-ID: <m1@example.org>\r\n" +
		"In-Reply-To: <p1@example.org> (Bob's message)\r\n" +
		"References: <r1@example.org>\r\n <r2@example.org>\r\n" +
		"Date: Tue, 1 Jun 2010 12:00:00 +0200\r\n" +
		"List-Id: <dev.example.org>\r\n" +
		"\r\n" +
		"Line one.\r\nLine two.\x00\r\n\r\n\r\n"
	s, err := Parse([]byte(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"ResentFrom", *s.ResentFrom, Address{"Carol", "carol@example.org"}},
		{"DeliveredTo", s.DeliveredTo, []string{"tracker+12@example.org", "tracker@example.org"}},
		{"AuthResults", s.AuthResults, []string{"mx.example.org;\tdmarc=pass header.from=example.org", "other.example; spf=fail"}},
		{"From", s.From, Address{"Bob", "Bob@Example.org"}},
		{"ReplyTo", s.ReplyTo, []Address{{"", "list@example.org"}}},
		{"To", s.To, []Address{{"", "tracker@example.org"}, {"", "second-to@example.org"}}},
		{"Cc", s.Cc, []Address{{"", "a@example.org"}, {"B", "b@example.org"}}},
		{"Subject", s.Subject, "Re:  [issue12] folded subject"},
		{"MessageID", s.MessageID, "m1@example.org"},
		{"InReplyTo", s.InReplyTo, []string{"p1@example.org"}},
		{"References", s.References, []string{"r1@example.org", "r2@example.org"}},
		{"Date", s.Date.UTC().Format("2006-01-02 15:04"), "2010-06-01 10:00"},
		{"ListMail", s.ListMail, true},
		{"Text", s.Text, "Line one.\nLine two."},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %q, want %q", c.what, fmt.Sprint(c.got), fmt.Sprint(c.want))
		}
	}
}

func TestParseLineEndings(t *testing.T) {
	lf := "From: a@example.org\nSubject: endings\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\none\ntwo\n--b\nContent-Type: application/octet-stream; name=x.bin\n\nxyz\n--b--\n"
	var subs []*Submission
	for _, raw := range []string{lf, strings.ReplaceAll(lf, "\n", "\r\n"), strings.ReplaceAll(lf, "\n", "\r")} {
		s, err := Parse([]byte(raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	for i, s := range subs {
		if s.Text != "one\ntwo" || s.Subject != "endings" || len(s.Files) != 1 || string(s.Files[0].Data) != "xyz" {
			t.Errorf("variant %d: Text %q Subject %q Files %d", i, s.Text, s.Subject, len(s.Files))
		}
	}
}

func TestParseLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.org\nSubject: many parts\nContent-Type: multipart/mixed; boundary=b\n\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "--b\nContent-Type: application/octet-stream; name=f%d.bin\n\nx\n", i)
	}
	b.WriteString("--b--\n")
	s, err := Parse([]byte(b.String()), Limits{MaxParts: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 9 || len(s.Warnings) == 0 {
		t.Errorf("MaxParts 10: %d files, warnings %q; want 9 files (the container counts) and a warning", len(s.Files), s.Warnings)
	}

	// Nesting: each level a multipart/mixed holding the next.
	depth := 15
	var n strings.Builder
	n.WriteString("From: a@example.org\nSubject: deep\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&n, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
	}
	n.WriteString("Content-Type: text/plain\n\ndeep text\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&n, "--b%d--\n", i)
	}
	s, err = Parse([]byte(n.String()), Limits{MaxDepth: 5})
	if err != nil {
		t.Fatal(err)
	}
	if s.Text != "" || len(s.Warnings) == 0 {
		t.Errorf("MaxDepth 5: Text %q warnings %q; want no text and a warning", s.Text, s.Warnings)
	}
	s, err = Parse([]byte(n.String()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Text != "deep text" {
		t.Errorf("default MaxDepth: Text %q, want %q", s.Text, "deep text")
	}
}

func TestParseInlineTextFallback(t *testing.T) {
	raw := "From: a@example.org\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n" +
		"--b\nContent-Type: text/plain\nContent-Disposition: inline; filename=msg.txt\n\nthe text\n--b--\n"
	s, err := Parse([]byte(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Text != "the text" || len(s.Files) != 1 || s.Files[0].Name != "msg.txt" {
		t.Errorf("Text %q Files %+v; want the inline text file as text and as a file", s.Text, s.Files)
	}
}
