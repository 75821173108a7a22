package notify

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func testMail(to string, n int) *Mail {
	return &Mail{EnvelopeFrom: "issues+bounce-abc@example.org", To: to,
		Data: []byte(fmt.Sprintf("From: x@example.org\r\nTo: %s\r\nSubject: test %d\r\n\r\n.leading dot\r\nline %d\r\n", to, n, n))}
}

// TestRelaySchemes sends through each URL scheme, with and without AUTH
// (PLAIN and LOGIN), and checks the envelope, the bytes (dot-stuffing
// undone), TLS, and that one connection carries every mail.
func TestRelaySchemes(t *testing.T) {
	for _, tc := range []struct {
		scheme, sinkTLS, mech string
	}{
		{"smtp", "", ""},
		{"smtp", "", "PLAIN"},
		{"smtp+starttls", "starttls", "PLAIN"},
		{"smtp+starttls", "starttls", "LOGIN"},
		{"smtps", "tls", "PLAIN"},
		{"smtps", "tls", ""},
	} {
		t.Run(tc.scheme+"/"+tc.mech, func(t *testing.T) {
			s := newSink(t, tc.sinkTLS)
			o := RelayOptions{URL: tc.scheme + "://" + s.addr, Connections: 2, Timeout: 10 * time.Second}
			if s.srv.TLSConfig != nil {
				o.TLSConfig = clientTLS(t, s.srv.TLSConfig)
			}
			if tc.mech != "" {
				s.users = map[string]string{"tracker": "s3cret"}
				o.Username, o.Password = "tracker", "s3cret"
				if tc.mech == "LOGIN" {
					s.mechs = []string{"LOGIN"} // the client must fall back to it
				}
			}
			r, err := NewRelay(o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i := range 3 {
				if err := r.Send(t.Context(), testMail("bob@example.com", i)); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			got := s.all()
			if len(got) != 3 {
				t.Fatalf("sink got %d mails, want 3", len(got))
			}
			for i, m := range got {
				want := string(testMail("bob@example.com", i).Data)
				if m.from != "issues+bounce-abc@example.org" || m.to != "bob@example.com" || string(m.data) != want {
					t.Errorf("mail %d: from %q to %q data %q; want the envelope and %q", i, m.from, m.to, m.data, want)
				}
				if m.tls != (tc.sinkTLS != "") {
					t.Errorf("mail %d: TLS = %v, want %v", i, m.tls, tc.sinkTLS != "")
				}
			}
			if n := s.conns.Load(); n != 1 {
				t.Errorf("%d connections for 3 mails in a row, want 1 (reuse)", n)
			}
			if tc.mech != "" && s.auths.Load() != 1 {
				t.Errorf("%d successful AUTHs, want 1", s.auths.Load())
			}
		})
	}
}

// TestRelayConcurrent: several senders at once use several connections,
// never more than Connections.
func TestRelayConcurrent(t *testing.T) {
	s := newSink(t, "")
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	s.hold = func(sunk) { arrived <- struct{}{}; <-release }
	r, err := NewRelay(RelayOptions{URL: "smtp://" + s.addr, Connections: 3, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errs := make(chan error, 6)
	for i := range 6 {
		go func() { errs <- r.Send(context.Background(), testMail(fmt.Sprintf("u%d@example.com", i), i)) }()
	}
	for range 3 {
		<-arrived
	}
	select {
	case <-arrived:
		t.Errorf("a fourth mail reached the sink while three connections were busy")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for range 6 {
		if err := <-errs; err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	if len(s.all()) != 6 {
		t.Errorf("sink got %d mails, want 6", len(s.all()))
	}
}

// TestRelayErrors: a 5xx is permanent, a 4xx temporary, and neither
// spoils the connection; an unreachable relay or refused credentials
// make the transport unavailable.
func TestRelayErrors(t *testing.T) {
	s := newSink(t, "")
	s.rcpt = func(to string) error {
		switch {
		case strings.HasPrefix(to, "gone"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "full"):
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}
	r, err := NewRelay(RelayOptions{URL: "smtp://" + s.addr, Connections: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Send(t.Context(), testMail("gone@example.com", 1)); !Permanent(err) || unavailable(err) {
		t.Errorf("550 on RCPT: Send = %v; want a permanent error", err)
	}
	if err := r.Send(t.Context(), testMail("full@example.com", 2)); err == nil || Permanent(err) || unavailable(err) {
		t.Errorf("452 on RCPT: Send = %v; want a temporary error", err)
	}
	if err := r.Send(t.Context(), testMail("ok@example.com", 3)); err != nil {
		t.Errorf("Send after two refusals: %v", err)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a refused recipient must not cost the connection", n)
	}
	if err := r.Send(t.Context(), &Mail{EnvelopeFrom: "a@b", To: "x y@example.com", Data: []byte("x")}); !Permanent(err) {
		t.Errorf("bad envelope: Send = %v; want a permanent error", err)
	}

	// Nothing listens: unavailable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	rd, _ := NewRelay(RelayOptions{URL: "smtp://" + down, Timeout: 5 * time.Second})
	if err := rd.Send(t.Context(), testMail("ok@example.com", 4)); !unavailable(err) || Permanent(err) {
		t.Errorf("relay down: Send = %v; want an UnavailableError", err)
	}

	// Wrong password: unavailable (our fault), not a permanent failure of
	// the mail.
	s2 := newSink(t, "")
	s2.users = map[string]string{"tracker": "right"}
	ra, _ := NewRelay(RelayOptions{URL: "smtp://" + s2.addr, Username: "tracker", Password: "wrong", Timeout: 5 * time.Second})
	if err := ra.Send(t.Context(), testMail("ok@example.com", 5)); !unavailable(err) || Permanent(err) {
		t.Errorf("bad credentials: Send = %v; want an UnavailableError", err)
	}
	// Without AUTH where the relay demands it (530 to MAIL): not permanent.
	rn, _ := NewRelay(RelayOptions{URL: "smtp://" + s2.addr, Timeout: 5 * time.Second})
	if err := rn.Send(t.Context(), testMail("ok@example.com", 6)); err == nil || Permanent(err) {
		t.Errorf("530 to MAIL: Send = %v; want a temporary error", err)
	}
	if len(s2.all()) != 0 {
		t.Errorf("the sink accepted mail without AUTH")
	}
}

// TestRelayStaleConnection: a kept connection the relay has closed (its
// idle timeout) is replaced without failing the mail.
func TestRelayStaleConnection(t *testing.T) {
	// The sink hangs up on idle clients.
	s := newSink(t, "", func(srv *smtp.Server) { srv.ReadTimeout = 200 * time.Millisecond })
	r, err := NewRelay(RelayOptions{URL: "smtp://" + s.addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Send(t.Context(), testMail("a@example.com", 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if err := r.Send(t.Context(), testMail("b@example.com", 2)); err != nil {
		t.Fatalf("Send on a connection the relay closed: %v", err)
	}
	if s.count("b@example.com") != 1 || s.conns.Load() != 2 {
		t.Errorf("second mail arrived %d times over %d connections; want once, over a second connection", s.count("b@example.com"), s.conns.Load())
	}
}

// dkimKeys returns PEM private keys (RSA PKCS#1 and Ed25519 PKCS#8) and
// the DNS TXT record of each.
func dkimKeys(t *testing.T) (pems [][]byte, records []string) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	records = append(records, "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(pub))
	epub, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	records = append(records, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(epub))
	return pems, records
}

// TestDKIMVerifies renders real notifications, signs them through the
// Sender NewSender builds from the config, sends them through the relay
// to the sink, and verifies what arrived with go-msgauth's verifier
// against a test resolver; a changed body must then fail.
func TestDKIMVerifies(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		pems, records := dkimKeys(t)
		f := newFixture(t, st)
		for i, key := range pems {
			s := newSink(t, "")
			f.cfg.Outgoing.Relay = "smtp://" + s.addr
			f.cfg.Outgoing.DKIMDomain, f.cfg.Outgoing.DKIMSelector, f.cfg.Outgoing.DKIMKey = "example.org", fmt.Sprintf("sel%d", i), key
			f.cfg.Outgoing.DKIMKeyFile = "key.pem"
			snd, err := NewSender(f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			f.enqueue(t, "bob@example.com", "carol@example.com")
			if n, err := New(st, f.cfg, snd, nil).Flush(t.Context()); err != nil || n != 2 {
				t.Fatalf("Flush = %d, %v", n, err)
			}
			CloseSender(snd)
			lookup := func(domain string) ([]string, error) {
				if domain == fmt.Sprintf("sel%d._domainkey.example.org", i) {
					return []string{records[i]}, nil
				}
				return nil, fmt.Errorf("no TXT record for %s", domain)
			}
			for _, m := range s.all() {
				vs, err := dkim.VerifyWithOptions(strings.NewReader(string(m.data)), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
					t.Fatalf("key %d: verify mail to %s: %v %+v\n%s", i, m.to, err, vs, m.data)
				}
				for _, h := range []string{"list-unsubscribe", "list-unsubscribe-post", "from", "subject", "message-id"} {
					found := false
					for _, k := range vs[0].HeaderKeys {
						found = found || strings.EqualFold(k, h)
					}
					if !found {
						t.Errorf("key %d: %s is not signed (h=%v)", i, h, vs[0].HeaderKeys)
					}
				}
				// The DKIM-Signature field cannot be folded after
				// signing and go-msgauth leaves h= on one line; the rest
				// must stay within 78 characters.
				sig, rest, _ := strings.Cut(string(m.data), "\r\nFrom:")
				if !strings.HasPrefix(sig, "DKIM-Signature:") || len(sig) > 998*3 {
					t.Errorf("key %d: the mail does not start with one DKIM-Signature field:\n%s", i, m.data)
				}
				checkWire(t, []byte("From:"+rest))
				tampered := strings.Replace(string(m.data), "It crashes", "It works", 1)
				vs, err = dkim.VerifyWithOptions(strings.NewReader(tampered), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("key %d: a changed body still verifies", i)
				}
			}
		}
		if _, err := NewDKIM(newTestSender(), "example.org", "s", []byte("not a key")); err == nil {
			t.Errorf("NewDKIM with a bad key: no error")
		}
	})
}
