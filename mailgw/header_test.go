package mailgw

import (
	"strings"
	"testing"
	"time"
)

func collect() (func(string), *[]string) {
	var ws []string
	return func(w string) { ws = append(ws, w) }, &ws
}

func TestDecodeText(t *testing.T) {
	tests := []struct {
		in, want string
		warns    bool
	}{
		{"plain ascii", "plain ascii", false},
		{"=?UTF-8?B?w4TDpCDDlsO2?=", "Ää Öö", false},
		{"=?iso-8859-1?q?caf=E9_cr=E8me?=", "café crème", false},
		{"Re: =?utf-8?q?a?= =?utf-8?q?b?=", "Re: ab", false},   // whitespace between words dropped
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?= c", "ab c", false},   // also across folding
		{"x =?utf-8?q?a?= y", "x a y", false},                  // kept next to plain text
		{"=?UTF-8?B?" + "4oI=?= =?UTF-8?B?rA==?=", "€", false}, // a character split across words
		{"=?utf-8?Q?MIME_UTF8_Test_=c2=a2?= More Text", "MIME UTF8 Test ¢ More Text", false},
		{"=?iso-2022-jp?b?GyRCJUYlOSVIGyhCCg=?=", "テスト\n", false}, // bad padding
		{"=?utf-7?Q?Fr+APY-sche?=", "Frösche", false},
		{"=?NONE?B?VEVTVA=?=", "TEST", false},             // "no charset" label, ASCII data
		{"=?iso-8859-1?Q?Fr\xf6sche?=", "Frösche", false}, // raw 8-bit inside a word
		{"Caf\xe9", "Café", true},                         // raw latin-1
		{"Säying Hello", "Säying Hello", false},           // RFC 6532
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated", false},
		{"=?bad charset?q?x?=", "=?bad charset?q?x?=", false},
		{"a =?utf-8?x?y?= b", "a =?utf-8?x?y?= b", false},
		{"=?utf-8*en?q?lang?=", "lang", false},
		{"=??=", "=??=", false},
	}
	for _, tc := range tests {
		warn, ws := collect()
		if got := decodeText(tc.in, warn); got != tc.want {
			t.Errorf("decodeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.warns != (len(*ws) > 0) {
			t.Errorf("decodeText(%q) warnings %q, want warnings: %v", tc.in, *ws, tc.warns)
		}
	}
}

func TestParseMediaValue(t *testing.T) {
	tests := []struct {
		in     string
		mt     string
		params map[string]string // via get, or text for "filename"/"name"
	}{
		{`text/plain; charset="UTF-8"`, "text/plain", map[string]string{"charset": "UTF-8"}},
		{`Multipart/Mixed;boundary=abc`, "multipart/mixed", map[string]string{"boundary": "abc"}},
		{`multipart/mixed; boundary="----=_Part_1"; type="text/html"`, "multipart/mixed", map[string]string{"boundary": "----=_Part_1", "type": "text/html"}},
		{`attachment; filename="a \"quoted\" name.txt"`, "attachment", map[string]string{"filename": `a "quoted" name.txt`}},
		{`attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf`, "attachment", map[string]string{"filename": "€ rates.pdf"}},
		{`attachment; filename*0*=UTF-8''%E2%82; filename*1*=%AC; filename*2=".pdf"`, "attachment", map[string]string{"filename": "€.pdf"}},
		{"attachment;\tfilename*1*=b.txt\tfilename*0*=utf-8''a", "attachment", map[string]string{"filename": "ab.txt"}}, // order, missing ";"
		{`application/pdf name=report.pdf`, "application/pdf", map[string]string{"name": "report.pdf"}},                 // missing ";"
		{`inline; filename=my file.pdf; size=3`, "inline", map[string]string{"filename": "my file.pdf", "size": "3"}},
		{`text/html; charset="UTF-8Return-Path: x`, "text/html", map[string]string{"charset": "UTF-8Return-Path: x"}},
		{`text/plain; charset=us-ascii (Plain text)`, "text/plain", map[string]string{"charset": "us-ascii"}},
		{`image/png; name="=?utf-8?B?w6Quc3Zn?="`, "image/png", map[string]string{"name": "ä.svg"}},
		{`attachment; filename="C:\TEMP\x.png"`, "attachment", map[string]string{"filename": `C:\TEMP\x.png`}},
		{`text/plain; charset=a; charset=b`, "text/plain", map[string]string{"charset": "a"}},
		{``, "", nil},
		{`;;;=;=x; =`, "", nil},
	}
	for _, tc := range tests {
		warn, _ := collect()
		mt, ps := parseMediaValue(tc.in, warn)
		if mt != tc.mt {
			t.Errorf("parseMediaValue(%q) type = %q, want %q", tc.in, mt, tc.mt)
		}
		for k, want := range tc.params {
			got := ps.get(k)
			if k == "filename" || k == "name" {
				got = ps.text(k, warn)
			}
			if got != want {
				t.Errorf("parseMediaValue(%q) %s = %q, want %q", tc.in, k, got, want)
			}
		}
	}
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []string // name=value
		body   string
	}{
		{"plain", "A: 1\nB: 2\n\nbody", []string{"a=1", "b=2"}, "body"},
		{"crlf and folding", "Subject: a\r\n b\r\n\tc\r\n\r\nbody", []string{"subject=a b\tc"}, "body"},
		{"leading whitespace", " From: x\nTo: y\n\nb", []string{"from=x", "to=y"}, "b"},
		{"broken wrap after ;", "Content-Type: a/b;\nname=x\nC: d\n\nb", []string{"content-type=a/b; name=x", "c=d"}, "b"},
		{"missing separator", "A: 1\nnot a field\nmore", []string{"a=1"}, "not a field\nmore"},
		{"blank line of spaces then field", "A: 1\n \nB: 2\n\nb", []string{"a=1", "b=2"}, "b"},
		{"blank line of spaces ends", "A: 1\n \nbody", []string{"a=1"}, "body"},
		{"no header", "just text\n", nil, "just text\n"},
		{"obsolete space before colon", "Subject : x\n\n", []string{"subject=x"}, ""},
		{"no body", "A: 1", []string{"a=1"}, ""},
	}
	for _, tc := range tests {
		warn, _ := collect()
		h, body := readHeader([]byte(tc.in), warn)
		var got []string
		for _, f := range h {
			got = append(got, f.name+"="+f.value)
		}
		if strings.Join(got, "|") != strings.Join(tc.fields, "|") || string(body) != tc.body {
			t.Errorf("%s: readHeader(%q) = %q, body %q; want %q, body %q", tc.name, tc.in, got, body, tc.fields, tc.body)
		}
	}
}

func TestMsgIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<a@b> <c@d>", []string{"a@b", "c@d"}},
		{"<a@b>\r\n\t<c\r\n @d>", []string{"a@b", "c@d"}},
		{"Your message of Tue <x@y>", []string{"x@y"}},
		{"<> <unterminated", nil},
	}
	for _, tc := range tests {
		if got := msgIDs(tc.in); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("msgIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for in, want := range map[string]string{"<a@b>": "a@b", " a@b ": "a@b", "garbage": "", "a b@c": ""} {
		if got := messageID(in); got != want {
			t.Errorf("messageID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339, "" for zero
	}{
		{"Mon, 2 May 2005 16:07:05 -0600", "2005-05-02T16:07:05-06:00"},
		{"Fri, 6 Apr 2001 09:23:06 -0800 (GMT-0800)", "2001-04-06T09:23:06-08:00"},
		{"9 Jul 2012 18:25:13 -0700", "2012-07-09T18:25:13-07:00"},
		{"May 8, 2005 1:17 PM", "2005-05-08T13:17:00Z"},
		{"Tue Jun  1 12:00:00 2010", "2010-06-01T12:00:00Z"},
		{"Thu,", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got := parseDate(tc.in)
		s := ""
		if !got.IsZero() {
			s = got.Format(time.RFC3339)
		}
		if s != tc.want {
			t.Errorf("parseDate(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}
