package mailgw

import (
	"fmt"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []Address
	}{
		{"alice@example.org", []Address{{"", "alice@example.org"}}},
		{"Alice <alice@example.org>", []Address{{"Alice", "alice@example.org"}}},
		{`"Smith, John" <john@example.org>, bob@example.org`, []Address{{"Smith, John", "john@example.org"}, {"", "bob@example.org"}}},
		{"bob@example.org (Bob Jones)", []Address{{"Bob Jones", "bob@example.org"}}},
		{"Bob@Example.ORG", []Address{{"", "Bob@Example.ORG"}}}, // case kept
		{"=?utf-8?q?J=C3=BCrgen?= <j@example.de>", []Address{{"Jürgen", "j@example.de"}}},
		{`"=?UTF-8?Q?Miros=C5=82aw_Marczak?=" <m@example.com>`, []Address{{"Mirosław Marczak", "m@example.com"}}},
		{"J\xfcrgen <j@example.de>", []Address{{"Jürgen", "j@example.de"}}},
		{"undisclosed-recipients:;", nil},
		{"Team: a@x.org, B <b@x.org>; c@x.org", []Address{{"", "a@x.org"}, {"B", "b@x.org"}, {"", "c@x.org"}}},
		{"<@route.example:user@example.org>", []Address{{"", "user@example.org"}}},
		{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", []Address{{"Pete", "pete@silly.test"}}},
		{"MAILER DAEMON <>", []Address{{"MAILER DAEMON", ""}}},
		{"John john@example.org", []Address{{"John", "john@example.org"}}},
		{"a@x.org,, ,b@x.org,", []Address{{"", "a@x.org"}, {"", "b@x.org"}}},
		{`"a@x.org" <a@x.org>`, []Address{{"", "a@x.org"}}},
		{"postoffice", []Address{{"", "postoffice"}}},
		{"<unterminated@x.org", []Address{{"", "unterminated@x.org"}}},
		{"(only a comment)", nil},
		{"", nil},
	}
	for _, tc := range tests {
		warn, _ := collect()
		got := parseAddressList(tc.in, warn)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("parseAddressList(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
