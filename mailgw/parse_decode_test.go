package mailgw

import (
	"strings"
	"testing"
)

func TestDecodeCharset(t *testing.T) {
	tests := []struct {
		label string
		in    string
		want  string
		warns bool
	}{
		{"utf-8", "h\xc3\xa9", "hé", false},
		{"UTF8", "h\xc3\xa9", "hé", false},
		{"iso-8859-1", "caf\xe9 \x93q\x94", "café “q”", false}, // read as windows-1252
		{"iso-8859-2", "Nikad vi\xb9e", "Nikad više", false},
		{"windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", "Привет", false},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", false},
		{"ks_c_5601-1987", "\xb0\xed\xb8\xbf", "고맙", false},
		{"euc-kr", "\xb0\xed\xb8\xbf", "고맙", false},
		{"iso-2022-jp", "\x1b$B%F%9%H\x1b(B", "テスト", false},
		{"shift_jis", "\x83e\x83X\x83g", "テスト", false},
		{"cp932", "\x83e\x83X\x83g", "テスト", false},
		{"gb2312", "\xc4\xe3\xba\xc3", "你好", false},
		{"utf-7", "Hi Mom -+Jjo--!", "Hi Mom -☺-!", false},
		{"utf-7", "A+ImIDkQ.", "A≢Α.", false},
		{"us-ascii", "plain", "plain", false},
		{"us-ascii", "caf\xc3\xa9", "café", true},           // mislabelled UTF-8
		{"us-ascii", "caf\xe9", "café", true},               // mislabelled latin-1
		{"utf-8", "caf\xe9", "café", true},                  // latin-1 labelled UTF-8
		{"utf-8", "\xd0\x97\xd0\xb4\xaa", "Зд\uFFFD", true}, // mostly UTF-8
		{"x-made-up", "abc", "abc", true},
		{"", "h\xc3\xa9", "hé", false},
		{"", "h\xe9", "hé", true},
		{"unknown-8bit", "h\xe9", "hé", true},
		{"iso-2022-jp", "Dij\x8aat", "DijŠat", true}, // 8-bit in a 7-bit charset
	}
	for _, tc := range tests {
		warn, ws := collect()
		got := decodeCharset(tc.label, []byte(tc.in), "test", warn)
		if got != tc.want {
			t.Errorf("decodeCharset(%q, %q) = %q, want %q", tc.label, tc.in, got, tc.want)
		}
		if tc.warns != (len(*ws) > 0) {
			t.Errorf("decodeCharset(%q, %q) warnings %q, want warnings: %v", tc.label, tc.in, *ws, tc.warns)
		}
	}
}

func TestDecodeBase64Lenient(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"SGVsbG8gV29ybGQh", "Hello World!", false},
		{"SGVs\r\nbG8=\r\n", "Hello", false},
		{"SGVsbG8", "Hello", false},                 // missing padding
		{"SGVsbG8=V29ybGQ=", "HelloWorld", false},   // concatenated padded blocks
		{"SGVsbG8gV29ybGQhX", "Hello World!", true}, // 4n+1
		{"SGV*sbG8!", "Hello", true},                // junk characters
		{"", "", false},
	}
	for _, tc := range tests {
		got, bad := decodeBase64Lenient([]byte(tc.in))
		if string(got) != tc.want || bad != tc.bad {
			t.Errorf("decodeBase64Lenient(%q) = %q, %v; want %q, %v", tc.in, got, bad, tc.want, tc.bad)
		}
	}
}

func TestDecodeQP(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"caf=C3=A9", "café", false},
		{"caf=c3=a9", "café", false},
		{"soft=\r\nbreak\r\nhard", "softbreak\r\nhard", false},
		{"soft= \nbreak", "softbreak", false}, // padding after the "="
		{"trailing   \nx", "trailing\nx", false},
		{"a=ZZb=", "a=ZZb", true},
		{"=", "", false},
		{"x=4", "x=4", true},
	}
	for _, tc := range tests {
		got, bad := decodeQP([]byte(tc.in))
		if string(got) != tc.want || bad != tc.bad {
			t.Errorf("decodeQP(%q) = %q, %v; want %q, %v", tc.in, got, bad, tc.want, tc.bad)
		}
	}
}

func TestDecodeFlowed(t *testing.T) {
	in := "This is \nflowed.\n> quoted \n> flowed\n>> deeper\n \n-- \nsig\n"
	want := "This is flowed.\n> quoted flowed\n>> deeper\n\n-- \nsig\n"
	if got := decodeFlowed(in, false); got != want {
		t.Errorf("decodeFlowed(%q) = %q, want %q", in, got, want)
	}
	if got, want := decodeFlowed("ab \ncd\n", true), "abcd\n"; got != want {
		t.Errorf("decodeFlowed delsp = %q, want %q", got, want)
	}
}

func TestEnrichedToText(t *testing.T) {
	in := "<bold>Hello</bold>\nworld\n\nnew para <<tag>\n<nofill>keep\nlines</nofill><param>x</param>"
	want := "Hello world\nnew para <tag> keep\nlines"
	if got := enrichedToText(in); got != want {
		t.Errorf("enrichedToText(%q) = %q, want %q", in, got, want)
	}
}

func TestSanitizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"a/b\\c.txt", "a_b_c.txt"},
		{"..", ""},
		{".bashrc", "bashrc"},
		{"evil\u202egpj.exe", "evilgpj.exe"},
		{"tab\there\x00.txt", "tabhere.txt"},
		{" spaced . ", "spaced"},
		{strings.Repeat("é", 200) + ".pdf", strings.Repeat("é", 98) + ".pdf"},
	}
	for _, tc := range tests {
		if got := sanitizeName(tc.in); got != tc.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
