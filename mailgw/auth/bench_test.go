package auth_test

import (
	"context"
	"testing"

	"github.com/trackerd/trackerd/mailgw/auth"
	"github.com/trackerd/trackerd/mailgw/auth/dnstest"
)

// BenchmarkCheck: one listener check (SPF pass, one DKIM signature, DMARC
// pass) against an in-memory zone, and against the zone served over UDP
// on loopback through NewResolver (Go's own resolver, no cache).
func BenchmarkCheck(b *testing.B) {
	key := newKey(b)
	z := zone(key, "v=DMARC1; p=reject")
	raw := key.sign(b, mail("alice@example.org"), "example.org")
	m := auth.Message{IP: goodIP, Helo: "client.test", MailFrom: "alice@example.org", From: "alice@example.org", Raw: raw}
	run := func(b *testing.B, r auth.Resolver) {
		c := auth.NewChecker(r, "tracker.test")
		for b.Loop() {
			if v := c.Check(context.Background(), m); v.DMARC != auth.Pass {
				b.Fatalf("dmarc %s", v.DMARC)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, z) })
	b.Run("udp", func(b *testing.B) {
		srv, err := dnstest.Serve(z)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		run(b, auth.NewResolver(srv.Addr))
	})
}

func BenchmarkRead(b *testing.B) {
	raw := msg("Authentication-Results: mx.example.net;\r\n dkim=pass header.d=example.org header.s=sel;\r\n spf=pass (comment) smtp.mailfrom=alice@example.org;\r\n dmarc=pass header.from=example.org",
		"Received: from client by mx.example.net", "Received: from a by b", "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; b=abc")
	for b.Loop() {
		if v := auth.Read(raw, []string{"mx.example.net"}); !v.Authenticated("example.org") {
			b.Fatal("not authenticated")
		}
	}
}
