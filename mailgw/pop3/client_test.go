package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/testdovecot"
	"github.com/trackerd/trackerd/mailgw/pop3"
)

// mail returns a small test message with CRLF line endings; its body has
// lines that start with dots, which POP3 byte-stuffs.
func mail(i int) []byte {
	return []byte(fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: tracker@example.org\r\nSubject: test %d\r\n"+
		"Message-ID: <pop3-test-%d@example.org>\r\n\r\nline one\r\n.\r\n..two dots\r\n.leading dot\r\nend %d\r\n", i, i, i))
}

// TestDovecot drives the client against a real Dovecot: plain with USER
// and PASS, STLS, pop3s, APOP; UIDL, LIST, RETR byte for byte, DELE only
// taking effect at QUIT, and errors with their response codes.
func TestDovecot(t *testing.T) {
	d := testdovecot.Start(t, testdovecot.Options{})
	mails := [][]byte{mail(1), mail(2), mail(3)}
	d.Append(t, "tracker", "INBOX", mails...)
	ctx := context.Background()
	opts := &pop3.Options{TLSConfig: d.TLSConfig(), Timeout: 10 * time.Second}

	connect := map[string]func(t *testing.T) *pop3.Client{
		"plain": func(t *testing.T) *pop3.Client {
			c, err := pop3.Dial(ctx, d.POP3, opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.TLS() {
				t.Errorf("plain connection reports TLS")
			}
			return c
		},
		"stls": func(t *testing.T) *pop3.Client {
			c, err := pop3.Dial(ctx, d.POP3, opts)
			if err != nil {
				t.Fatal(err)
			}
			caps, err := c.Capa()
			if err != nil || !caps.Has("STLS") || !caps.Has("UIDL") {
				t.Fatalf("Capa = %v, %v; want STLS and UIDL", caps, err)
			}
			if err := c.StartTLS(); err != nil {
				t.Fatalf("StartTLS: %v", err)
			}
			if !c.TLS() {
				t.Errorf("after StartTLS the connection does not report TLS")
			}
			return c
		},
		"pop3s": func(t *testing.T) *pop3.Client {
			c, err := pop3.DialTLS(ctx, d.POP3S, opts)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	for _, name := range []string{"plain", "stls", "pop3s"} {
		t.Run(name, func(t *testing.T) {
			c := connect[name](t)
			defer c.Close()
			if err := c.Login("tracker", "secret"); err != nil {
				t.Fatalf("Login: %v\n%s", err, d.Log())
			}
			uidl, err := c.UIDL()
			if err != nil || len(uidl) != 3 {
				t.Fatalf("UIDL = %v, %v; want 3 messages", uidl, err)
			}
			list, err := c.List()
			if err != nil || len(list) != 3 {
				t.Fatalf("List = %v, %v; want 3 messages", list, err)
			}
			for i, m := range list {
				got, err := c.Retr(m.Num, 1<<20)
				if err != nil {
					t.Fatalf("Retr(%d): %v", m.Num, err)
				}
				if string(got) != string(mails[i]) {
					t.Errorf("Retr(%d) =\n%q\nwant\n%q", m.Num, got, mails[i])
				}
				if int64(len(got)) != m.Size {
					t.Errorf("Retr(%d): %d bytes, LIST said %d", m.Num, len(got), m.Size)
				}
			}
			if _, err := c.Retr(1, 10); !errors.Is(err, pop3.ErrTooLarge) {
				t.Errorf("Retr with a limit of 10 bytes: %v, want ErrTooLarge", err)
			}
			if err := c.Noop(); err != nil {
				t.Errorf("NOOP after a message over the limit: %v (the session lost step)", err)
			}
			var pe *pop3.Error
			if _, err := c.Retr(99, 1<<20); !errors.As(err, &pe) {
				t.Errorf("Retr(99): %v, want a -ERR", err)
			}
			// DELE without QUIT deletes nothing.
			if err := c.Dele(1); err != nil {
				t.Fatalf("Dele: %v", err)
			}
		})
	}
	if total, _ := d.Count(t, "tracker", "INBOX"); total != 3 {
		t.Fatalf("after DELE without QUIT the mailbox holds %d messages, want 3", total)
	}

	t.Run("apop and quit", func(t *testing.T) {
		c := connect["plain"](t)
		if !c.CanAPOP() {
			t.Fatalf("Dovecot's greeting %q offers no APOP", c.Greeting())
		}
		if err := c.APOP("tracker", "secret"); err != nil {
			t.Fatalf("APOP: %v\n%s", err, d.Log())
		}
		if err := c.Dele(1); err != nil {
			t.Fatal(err)
		}
		if err := c.Rset(); err != nil {
			t.Fatal(err)
		}
		if err := c.Dele(2); err != nil {
			t.Fatal(err)
		}
		if err := c.Quit(); err != nil {
			t.Fatalf("Quit: %v", err)
		}
		if total, _ := d.Count(t, "tracker", "INBOX"); total != 2 {
			t.Fatalf("after DELE 1, RSET, DELE 2, QUIT the mailbox holds %d messages, want 2", total)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		for _, login := range []func(c *pop3.Client) error{
			func(c *pop3.Client) error { return c.Login("tracker", "wrong") },
			func(c *pop3.Client) error { return c.APOP("tracker", "wrong") },
		} {
			c := connect["plain"](t)
			err := login(c)
			c.Close()
			var pe *pop3.Error
			if !errors.As(err, &pe) || pe.Temporary() {
				t.Errorf("login with a wrong password: %v, want a permanent -ERR", err)
			}
		}
	})

	t.Run("unverified certificate", func(t *testing.T) {
		_, err := pop3.DialTLS(ctx, d.POP3S, &pop3.Options{Timeout: 10 * time.Second})
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &ve) {
			t.Errorf("DialTLS to a self-signed server without trusting it: %v, want an unknown authority error", err)
		}
		c, err := pop3.Dial(ctx, d.POP3, &pop3.Options{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("StartTLS to a self-signed server without trusting it: %v, want a certificate error", err)
		}
	})
}

// TestAuthXOAUTH2 runs the RFC 5034 AUTH exchange against a scripted
// server: the initial response goes with the command, and a failure's
// JSON challenge is answered with an empty response before the -ERR.
func TestAuthXOAUTH2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(r *bufio.Reader, w net.Conn) // after the greeting
		ok     bool
	}{
		{name: "accepted", ok: true, script: func(r *bufio.Reader, w net.Conn) {
			line, _ := r.ReadString('\n')
			want := "AUTH XOAUTH2 " + base64.StdEncoding.EncodeToString([]byte("user=u@example.org\x01auth=Bearer tok\x01\x01")) + "\r\n"
			if line != want {
				fmt.Fprintf(w, "-ERR bad line %q\r\n", line)
				return
			}
			fmt.Fprintf(w, "+OK welcome\r\n")
		}},
		{name: "refused", script: func(r *bufio.Reader, w net.Conn) {
			r.ReadString('\n')
			fmt.Fprintf(w, "+ %s\r\n", base64.StdEncoding.EncodeToString([]byte(`{"status":"401"}`)))
			if line, _ := r.ReadString('\n'); line != "\r\n" {
				fmt.Fprintf(w, "-ERR expected an empty response, got %q\r\n", line)
				return
			}
			fmt.Fprintf(w, "-ERR [AUTH] invalid token\r\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				fmt.Fprintf(server, "+OK ready\r\n")
				tc.script(bufio.NewReader(server), server)
			}()
			c, err := pop3.NewClient(client, "localhost", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Auth(xoauth2{"u@example.org", "tok"})
			var pe *pop3.Error
			switch {
			case tc.ok && err != nil:
				t.Errorf("Auth: %v", err)
			case !tc.ok && (!errors.As(err, &pe) || pe.Code != "AUTH"):
				t.Errorf("Auth: %v, want -ERR [AUTH]", err)
			}
		})
	}
}

// xoauth2 is a minimal SASL XOAUTH2 client for the test.
type xoauth2 struct{ user, token string }

func (x xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}
func (x xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }
