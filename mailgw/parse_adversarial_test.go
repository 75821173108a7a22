package mailgw

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestParseAdversarial feeds Parse inputs built to trigger quadratic
// behaviour. Linear code parses each in well under a second; the 30 s cap
// only catches blow-ups (it is generous for -race on a loaded machine),
// and anything over 2 s is logged.
func TestParseAdversarial(t *testing.T) {
	if testing.Short() {
		t.Skip("large inputs")
	}
	many := func(n int, s string) string { return strings.Repeat(s, n) }
	var parts strings.Builder
	parts.WriteString("From: a@example.org\nSubject: parts\nContent-Type: multipart/mixed; boundary=b\n\n")
	for i := 0; i < 600; i++ {
		fmt.Fprintf(&parts, "--b\nContent-Type: text/plain\n\n%s\n", many(400, "text text "))
	}
	var fields strings.Builder
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(&fields, "X-F%d: v\n", i)
	}
	tests := []struct {
		name string
		raw  string
	}{
		{"encoded-word starts", "Subject: " + many(200000, "=?"+many(70, "a")) + "?=\n\nx"},
		{"encoded-word prefixes", "Subject: " + many(300000, "=?u?q?") + "\n\nx"},
		{"long encoded word", "Subject: =?utf-8?q?" + many(1<<20, "=41") + "?=\n\nx"},
		{"many inline text parts", parts.String()},
		{"many header fields", "From: a@example.org\n" + fields.String() + "\nbody"},
		{"huge address list", "To: " + many(100000, "Name <a@example.org>, ") + "\n\nx"},
		{"unclosed comments", "From: " + many(200000, "(") + "\n\nx"},
		{"nested html", "Content-Type: text/html\n\n" + many(100000, "<blockquote><ol><li><a href=x>") + "x"},
		{"html entities", "Content-Type: text/html\n\n" + many(500000, "&amp;&#") + "x"},
		{"boundary-like lines", "Content-Type: multipart/mixed; boundary=abc\n\n" + many(200000, "--abcd\n--ab\n")},
		{"no boundary, many dash lines", "Content-Type: multipart/mixed\n\n" + many(200000, "--candidate\n")},
		{"params", "Content-Type: text/plain;" + many(200000, " a*1*=%41; b=\"x") + "\n\nx"},
		{"folded header", "Subject: x" + many(500000, "\n y") + "\n\nx"},
		{"qp soft breaks", "Content-Transfer-Encoding: quoted-printable\n\n" + many(500000, "=\n")},
		{"flowed", "Content-Type: text/plain; format=flowed\n\n" + many(300000, "a \n")},
		{"base64 junk", "Content-Transfer-Encoding: base64\n\n" + many(1<<20, "!a")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := parseGuarded([]byte(tc.raw), 30*time.Second)
			switch {
			case r.panicMsg != "":
				t.Fatalf("panic: %s", r.panicMsg)
			case r.timedOut:
				t.Fatalf("Parse of %d bytes took more than 30s", len(tc.raw))
			}
			if r.elapsed > 2*time.Second {
				t.Logf("slow: %v for %d bytes", r.elapsed, len(tc.raw))
			}
		})
	}
}
