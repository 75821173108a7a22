package auth_test

import (
	"strings"
	"testing"

	"github.com/trackerd/trackerd/mailgw/auth"
)

// msg builds a mail whose header is the given lines, top first.
func msg(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\nFrom: alice@example.org\r\nSubject: x\r\n\r\nbody\r\n")
}

func TestRead(t *testing.T) {
	trusted := []string{"mx.example.net", "filter.example.net"}
	tests := []struct {
		name    string
		raw     []byte
		checked bool
		authed  bool
	}{
		{"topmost trusted dmarc pass",
			msg("Authentication-Results: mx.example.net; dmarc=pass header.from=example.org",
				"Received: from client by mx.example.net"),
			true, true},
		{"gmail style, comments and folding",
			msg("Authentication-Results: mx.example.net;\r\n       dkim=pass header.i=@example.org header.s=20230601 header.b=AbCd+/1=;\r\n" +
				"       spf=pass (mx.example.net: domain of alice@example.org designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@example.org;\r\n" +
				"       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.org"),
			true, true},
		{"version after the authserv-id, quoted values",
			msg(`Authentication-Results: mx.example.net 1; spf=pass smtp.mailfrom="alice@example.org"`),
			true, true},
		{"trusted dmarc fail",
			msg("Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.org; dmarc=fail header.from=example.org"),
			true, false},
		{"no dmarc record: aligned dkim pass in relaxed mode",
			msg("Authentication-Results: mx.example.net; dkim=pass header.d=mail.example.org; dmarc=none header.from=example.org"),
			true, true},
		{"dmarc pass for another From domain does not count",
			msg("Authentication-Results: mx.example.net; dmarc=pass header.from=attacker.test"),
			true, false},
		{"separate trusted headers above the host's Received are merged",
			msg("Authentication-Results: filter.example.net; dmarc=pass header.from=example.org",
				"Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=example.org",
				"Received: from client by mx.example.net"),
			true, true},
		{"only another authserv-id",
			msg("Authentication-Results: mx.attacker.test; dmarc=pass header.from=example.org"),
			false, false},
		{"a trusted-looking header below an untrusted one is ignored",
			msg("Authentication-Results: mx.other.test; spf=fail smtp.mailfrom=example.org",
				"Authentication-Results: mx.example.net; dmarc=pass header.from=example.org"),
			false, false},
		{"a trusted-looking header below the trusted host's Received is ignored",
			msg("Authentication-Results: mx.example.net; spf=fail smtp.mailfrom=example.org; dmarc=none header.from=example.org",
				"Received: from client by mx.example.net",
				"Authentication-Results: mx.example.net; dmarc=pass header.from=example.org"),
			true, false},
		{"a forged trusted header with no trusted one above it (behind a Received) counts only as the topmost",
			msg("Received: from client by mx.example.net",
				"Authentication-Results: mx.example.net; dmarc=fail header.from=example.org",
				"Received: from evil by relay.test",
				"Authentication-Results: mx.example.net; dmarc=pass header.from=example.org"),
			true, false},
		{"a malformed trusted header stops the reading",
			msg("Authentication-Results: mx.example.net; dmarc=pass (unclosed comment header.from=example.org",
				"Authentication-Results: mx.example.net; dmarc=pass header.from=example.org"),
			false, false},
		{"none",
			msg("Authentication-Results: mx.example.net; none"),
			false, false},
		{"no header at all",
			msg("Received: from a by b"),
			false, false},
		{"header in the body is not read",
			[]byte("From: alice@example.org\r\n\r\nAuthentication-Results: mx.example.net; dmarc=pass header.from=example.org\r\n"),
			false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := auth.Read(tt.raw, trusted)
			if v.Checked != tt.checked || v.Authenticated("alice@example.org") != tt.authed {
				t.Errorf("Read: checked=%v authenticated=%v, want %v %v (%+v)", v.Checked, v.Authenticated("alice@example.org"), tt.checked, tt.authed, v)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	h, err := auth.ParseHeader(` example.org (comment (nested) \) ) 1; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net;` +
		` sender-id=pass header.from=example.net; dkim/1=fail reason="bad \"sig\"; really" header.d=example.net`)
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	if h.AuthservID != "example.org" || len(h.Results) != 4 {
		t.Fatalf("ParseHeader = %+v", h)
	}
	last := h.Results[3]
	if last.Method != "dkim" || last.Result != auth.Fail || last.Props["reason"] != `bad "sig"; really` || last.Props["header.d"] != "example.net" {
		t.Errorf("ParseHeader last result = %+v", last)
	}
	for _, bad := range []string{"", ";", "example.org", "example.org; =pass", "example.org; spf", "example.org; spf=pass smtp", "example.org; spf=pass (x", `example.org; spf="pass"`, "a b c; spf=pass"} {
		if _, err := auth.ParseHeader(bad); err == nil {
			t.Errorf("ParseHeader(%q): no error", bad)
		}
	}
}

// TestFieldQuotes: a value taken from the mail (a signature's d=) cannot
// add results to the header trackerd writes.
func TestFieldQuotes(t *testing.T) {
	v := auth.Verdict{AuthservID: "tracker.test", Checked: true, SPF: auth.Fail, SPFDomain: "example.org",
		DKIM:  []auth.Signature{{Result: auth.Fail, Domain: "x; dmarc=pass header.from=example.org\r\nX-Evil: 1"}},
		DMARC: auth.Fail, DMARCFrom: "example.org", DMARCPolicy: "reject"}
	f := v.Field("\r\n")
	if strings.Count(f, "\n") != 4 || strings.Contains(f, "\r\nX-Evil") {
		t.Fatalf("Field wrote extra lines:\n%s", f)
	}
	back, _, ok := auth.ReadOwn([]byte(f+"From: a@example.org\r\n\r\n"), "tracker.test")
	if !ok || back.DMARC != auth.Fail || len(back.DKIM) != 1 || back.Authenticated("example.org") {
		t.Errorf("ReadOwn(Field()) = %+v, %v", back, ok)
	}
	if _, _, ok := auth.ReadOwn([]byte(f), "other.test"); ok {
		t.Error("ReadOwn with another authserv-id: ok")
	}
	unchecked := auth.Verdict{AuthservID: "tracker.test"}
	if got := unchecked.Field("\n"); got != "Authentication-Results: tracker.test; none\n" {
		t.Errorf("unchecked Field = %q", got)
	}
}
