package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/trackerd/trackerd/mailgw/auth"
	"github.com/trackerd/trackerd/mailgw/auth/dnstest"
)

// testKey is a DKIM key for the fake zones; its public half is published
// as sel._domainkey.DOMAIN by signer.
type testKey struct {
	priv ed25519.PrivateKey
	rec  string
}

func newKey(t testing.TB) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, rec: "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
}

// sign DKIM-signs raw for domain d with selector "sel".
func (k testKey) sign(t testing.TB, raw, d string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := dkim.Sign(&b, strings.NewReader(raw), &dkim.SignOptions{Domain: d, Selector: "sel", Signer: k.priv}); err != nil {
		t.Fatalf("dkim.Sign: %v", err)
	}
	return b.Bytes()
}

func mail(from string) string {
	return "From: Alice <" + from + ">\r\nTo: tracker@tracker.test\r\nSubject: hello [status=resolved]\r\n" +
		"Message-ID: <m1@example.org>\r\nDate: Mon, 02 Jan 2026 10:00:00 +0000\r\n\r\nBody text.\r\n"
}

var (
	goodIP = net.ParseIP("192.0.2.10")
	badIP  = net.ParseIP("198.51.100.66")
)

// zone is the fake DNS of most tests: example.org sends from goodIP and
// signs with key; its DMARC record is set per test.
func zone(key testKey, dmarc string) *dnstest.Zone {
	z := &dnstest.Zone{
		TXT: map[string][]string{
			"example.org":                     {"v=spf1 ip4:192.0.2.10 -all"},
			"sel._domainkey.example.org":      {key.rec},
			"sel._domainkey.mail.example.org": {key.rec},
			"other.net":                       {"v=spf1 ip4:198.51.100.66 -all"},
			"sel._domainkey.other.net":        {key.rec},
		},
	}
	if dmarc != "" {
		z.TXT["_dmarc.example.org"] = []string{dmarc}
	}
	return z
}

func TestCheck(t *testing.T) {
	key := newKey(t)
	plain := func(from string) []byte { return []byte(mail(from)) }
	signed := func(from, d string) []byte { return key.sign(t, mail(from), d) }
	tampered := func(from, d string) []byte {
		return bytes.Replace(signed(from, d), []byte("Body text."), []byte("Body text!"), 1)
	}
	tests := []struct {
		name       string
		record     string // _dmarc.example.org
		fail       []string
		ip         net.IP
		mailFrom   string
		from       string
		raw        []byte
		spf, dmarc Result
		dkim       []auth.Result
		policy     string
		authed     bool
	}{
		{name: "spf pass, aligned, no dmarc record", ip: goodIP, mailFrom: "alice@example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Pass, dmarc: auth.None, authed: true},
		{name: "spf fail", ip: badIP, mailFrom: "alice@example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Fail, dmarc: auth.None},
		{name: "spf pass for another domain: not aligned", ip: badIP, mailFrom: "bounce@other.net", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Pass, dmarc: auth.None},
		{name: "spf none for a null sender's helo", ip: badIP, mailFrom: "", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.None, dmarc: auth.None},
		{name: "dkim pass, aligned", ip: badIP, mailFrom: "x@nowhere.test", from: "alice@example.org",
			raw: signed("alice@example.org", "example.org"), spf: auth.None, dkim: []auth.Result{auth.Pass}, dmarc: auth.None, authed: true},
		{name: "dkim fail: body changed after signing", ip: badIP, mailFrom: "x@nowhere.test", from: "alice@example.org",
			raw: tampered("alice@example.org", "example.org"), spf: auth.None, dkim: []auth.Result{auth.Fail}, dmarc: auth.None},
		{name: "dkim pass for another domain: not aligned", ip: badIP, mailFrom: "x@nowhere.test", from: "alice@example.org",
			raw: signed("alice@example.org", "other.net"), spf: auth.None, dkim: []auth.Result{auth.Pass}, dmarc: auth.None},
		{name: "dkim none", ip: badIP, mailFrom: "x@nowhere.test", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.None, dmarc: auth.None},
		{name: "dmarc p=reject, nothing aligned passes", record: "v=DMARC1; p=reject", ip: badIP, mailFrom: "alice@example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Fail, dmarc: auth.Fail, policy: "reject"},
		{name: "dmarc p=none, nothing aligned passes", record: "v=DMARC1; p=none", ip: badIP, mailFrom: "alice@example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Fail, dmarc: auth.Fail, policy: "none"},
		{name: "dmarc p=reject, spf passes", record: "v=DMARC1; p=reject", ip: goodIP, mailFrom: "alice@example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Pass, dmarc: auth.Pass, policy: "reject", authed: true},
		{name: "dmarc relaxed: dkim d=mail.example.org for From example.org", record: "v=DMARC1; p=reject", ip: badIP, mailFrom: "x@nowhere.test", from: "alice@example.org",
			raw: signed("alice@example.org", "mail.example.org"), spf: auth.None, dkim: []auth.Result{auth.Pass}, dmarc: auth.Pass, policy: "reject", authed: true},
		{name: "dmarc strict: dkim d=mail.example.org for From example.org", record: "v=DMARC1; p=reject; adkim=s", ip: badIP, mailFrom: "x@nowhere.test", from: "alice@example.org",
			raw: signed("alice@example.org", "mail.example.org"), spf: auth.None, dkim: []auth.Result{auth.Pass}, dmarc: auth.Fail, policy: "reject"},
		{name: "dmarc strict spf: envelope at a subdomain", record: "v=DMARC1; p=quarantine; aspf=s", ip: goodIP, mailFrom: "b@lists.example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.None, dmarc: auth.Fail, policy: "quarantine"},
		{name: "dmarc of the organisational domain, sp= for a subdomain From", record: "v=DMARC1; p=none; sp=reject", ip: badIP, mailFrom: "x@nowhere.test", from: "bob@lists.example.org",
			raw: plain("bob@lists.example.org"), spf: auth.None, dmarc: auth.Fail, policy: "reject"},
		{name: "dmarc relaxed: subdomain From, dkim of the organisational domain", record: "v=DMARC1; p=reject", ip: badIP, mailFrom: "x@nowhere.test", from: "bob@lists.example.org",
			raw: signed("bob@lists.example.org", "example.org"), spf: auth.None, dkim: []auth.Result{auth.Pass}, dmarc: auth.Pass, policy: "reject", authed: true},
		{name: "dmarc temperror", fail: []string{"_dmarc.example.org"}, ip: goodIP, mailFrom: "alice@example.org", from: "alice@example.org",
			raw: plain("alice@example.org"), spf: auth.Pass, dmarc: auth.TempError},
		{name: "no From domain", ip: goodIP, mailFrom: "alice@example.org", from: "",
			raw: plain("alice@example.org"), spf: auth.Pass, dmarc: auth.None},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := zone(key, tt.record)
			z.Fail = map[string]bool{}
			for _, n := range tt.fail {
				z.Fail[n] = true
			}
			c := auth.NewChecker(z, "tracker.test")
			v := c.Check(context.Background(), auth.Message{IP: tt.ip, Helo: "client.test", MailFrom: tt.mailFrom, From: tt.from, Raw: tt.raw})
			var dk []auth.Result
			for _, s := range v.DKIM {
				dk = append(dk, s.Result)
			}
			if v.SPF != tt.spf || v.DMARC != tt.dmarc || v.DMARCPolicy != tt.policy || !slices.Equal(dk, tt.dkim) {
				t.Errorf("Check = spf %s, dkim %v, dmarc %s (p=%s); want spf %s, dkim %v, dmarc %s (p=%s)",
					v.SPF, dk, v.DMARC, v.DMARCPolicy, tt.spf, tt.dkim, tt.dmarc, tt.policy)
			}
			if got := v.Authenticated(tt.from); got != tt.authed {
				t.Errorf("Authenticated(%q) = %v, want %v (%s)", tt.from, got, tt.authed, v.Why(tt.from))
			}
			// The header written for the archive reads back as the same verdict.
			field := v.Field("\r\n")
			back, rest, ok := auth.ReadOwn(append([]byte(field), tt.raw...), "tracker.test")
			if !ok || !bytes.Equal(rest, tt.raw) {
				t.Fatalf("ReadOwn(Field()) ok=%v, rest changed=%v; field:\n%s", ok, !bytes.Equal(rest, tt.raw), field)
			}
			if back.Authenticated(tt.from) != tt.authed || back.SPF != v.SPF || back.DMARC != v.DMARC || len(back.DKIM) != len(v.DKIM) {
				t.Errorf("ReadOwn(Field()) = %+v, want %+v", back, v)
			}
		})
	}
}

type Result = auth.Result

// TestCheckOverUDP runs a check through NewResolver and a DNS server
// answering from a fake zone: the way the trackerd binary is tested
// (mailgw.dns_server).
func TestCheckOverUDP(t *testing.T) {
	key := newKey(t)
	srv, err := dnstest.Serve(zone(key, "v=DMARC1; p=reject"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := auth.NewChecker(auth.NewResolver(srv.Addr), "tracker.test")
	raw := key.sign(t, mail("alice@example.org"), "example.org")
	v := c.Check(context.Background(), auth.Message{IP: goodIP, Helo: "client.test", MailFrom: "alice@example.org", From: "alice@example.org", Raw: raw})
	if v.SPF != auth.Pass || v.DMARC != auth.Pass || len(v.DKIM) != 1 || v.DKIM[0].Result != auth.Pass || !v.Authenticated("alice@example.org") {
		t.Errorf("Check over UDP = %+v, want spf, dkim and dmarc pass", v)
	}
	v = c.Check(context.Background(), auth.Message{IP: badIP, Helo: "client.test", MailFrom: "alice@example.org", From: "alice@example.org", Raw: []byte(mail("alice@example.org"))})
	if v.SPF != auth.Fail || v.DMARC != auth.Fail || v.Authenticated("alice@example.org") {
		t.Errorf("Check over UDP of a forgery = %+v, want spf and dmarc fail", v)
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		d, from string
		strict  bool
		want    bool
	}{
		{"example.org", "example.org", true, true},
		{"Example.ORG.", "example.org", true, true},
		{"mail.example.org", "example.org", false, true},
		{"mail.example.org", "example.org", true, false},
		{"a.example.co.uk", "b.example.co.uk", false, true},
		{"foo.co.uk", "bar.co.uk", false, false}, // co.uk is a public suffix
		{"evil-example.org", "example.org", false, false},
		{"alice.github.io", "bob.github.io", false, false}, // a private suffix of the list
		{"", "example.org", false, false},
	}
	for _, tt := range tests {
		if got := auth.Aligned(tt.d, tt.from, tt.strict); got != tt.want {
			t.Errorf("Aligned(%q, %q, strict=%v) = %v, want %v", tt.d, tt.from, tt.strict, got, tt.want)
		}
	}
}
