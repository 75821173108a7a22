package auth_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/trackerd/trackerd/mailgw/auth"
)

// FuzzParseHeader: the Authentication-Results value reader never panics,
// and what it reads survives being written by Field and read again.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		"mx.example.net; dmarc=pass header.from=example.org",
		"mx.example.net 1; spf=pass (comment (nested)) smtp.mailfrom=\"a@b\"; dkim/1=fail reason=\"x;y\" header.d=b header.b=AbC=",
		"mx.example.net; none",
		"; ; =",
		"(((",
		"\"unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		h, err := auth.ParseHeader(value)
		if err != nil {
			return
		}
		raw := []byte("Authentication-Results:" + value + "\r\nFrom: a@example.org\r\n\r\n")
		v := auth.Read(raw, []string{h.AuthservID})
		if !strings.ContainsAny(value, "\r\n") && len(h.Results) > 0 && !v.Checked {
			t.Fatalf("Read of a parsed header with its own authserv-id %q: not checked", h.AuthservID)
		}
		// Written by trackerd and read back, the verdict says the same.
		v.AuthservID = "tracker.test"
		back, _, ok := auth.ReadOwn([]byte(v.Field("\r\n")), "tracker.test")
		if !ok {
			t.Fatalf("ReadOwn(Field(%+v)) failed:\n%s", v, v.Field("\r\n"))
		}
		if back.SPF != v.SPF || back.DMARC != v.DMARC || len(back.DKIM) != len(v.DKIM) {
			t.Fatalf("round trip: %+v\nbecame %+v\nfield:\n%s", v, back, v.Field("\r\n"))
		}
		for _, d := range []string{"example.org", v.DMARCFrom, v.SPFDomain} {
			if back.Authenticated(d) != v.Authenticated(d) && d == auth.Domain(clean2(d)) {
				t.Fatalf("round trip changed Authenticated(%q): %+v became %+v", d, v, back)
			}
		}
	})
}

func clean2(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}

// FuzzRead: reading the header of any mail never panics, and what is
// believed comes from trusted fields above the body.
func FuzzRead(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx.example.net; dmarc=pass header.from=example.org\r\nFrom: a@example.org\r\n\r\nbody"), "mx.example.net")
	f.Add([]byte("Received: x\r\nAuthentication-Results: mx.example.net;\r\n dkim=pass header.d=example.org\r\n\r\n"), "mx.example.net")
	f.Add([]byte("\r\n\r\nAuthentication-Results: a; dmarc=pass"), "a")
	f.Add([]byte("Authentication-Results: a; dmarc=pass\n"), "a")
	f.Fuzz(func(t *testing.T, raw []byte, trusted string) {
		v := auth.Read(raw, []string{trusted})
		if v.Checked && !strings.EqualFold(v.AuthservID, trusted) {
			t.Fatalf("Read believed authserv-id %q, trusted only %q", v.AuthservID, trusted)
		}
		if bytes.HasPrefix(raw, []byte("\r\n")) || bytes.HasPrefix(raw, []byte("\n")) {
			if v.Checked {
				t.Fatal("Read believed a header field of the body")
			}
		}
		_, rest, ok := auth.ReadOwn(raw, trusted)
		if !ok && !bytes.Equal(rest, raw) {
			t.Fatal("ReadOwn changed raw without reading a field")
		}
		if ok && !bytes.HasSuffix(raw, rest) {
			t.Fatal("ReadOwn's rest is not the end of raw")
		}
	})
}
