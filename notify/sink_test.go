package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/testcert"
)

// sink is an in-test SMTP server (go-smtp's) that keeps every message it
// accepts: the relay the notifier talks to in these tests.
type sink struct {
	t    testing.TB
	srv  *smtp.Server
	addr string

	mu      sync.Mutex
	mails   []sunk
	remotes map[string]bool
	// rcpt, when set, may refuse a recipient.
	rcpt func(to string) error
	// hold, when set, is called in DATA before the answer; it may block.
	hold func(m sunk)
	// users are the AUTH accounts; nil means no AUTH offered.
	users map[string]string
	// mechs are the AUTH mechanisms offered; nil means PLAIN and LOGIN.
	mechs []string

	conns atomic.Int32 // sessions opened
	auths atomic.Int32 // successful AUTHs
}

// sunk is one accepted message.
type sunk struct {
	from, to string
	data     []byte
	tls      bool
}

// newSink starts a sink on a free loopback port; tlsMode is "" (plain),
// "starttls" or "tls" (smtps). It stops when the test ends.
// Each of configure may change the server before it starts.
func newSink(t testing.TB, tlsMode string, configure ...func(*smtp.Server)) *sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startSink(t, l, tlsMode, configure...)
}

func startSink(t testing.TB, l net.Listener, tlsMode string, configure ...func(*smtp.Server)) *sink {
	s := &sink{t: t, addr: l.Addr().String()}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		if s.remotes == nil {
			s.remotes = map[string]bool{}
		}
		if r := c.Conn().RemoteAddr().String(); !s.remotes[r] { // go-smtp starts a new session after STARTTLS
			s.remotes[r] = true
			s.conns.Add(1)
		}
		s.mu.Unlock()
		_, isTLS := c.TLSConnectionState()
		return &sinkSession{s: s, tls: isTLS, c: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.MaxRecipients = 10
	switch tlsMode {
	case "starttls":
		s.srv.TLSConfig = testTLS(t)
	case "tls":
		s.srv.TLSConfig = testTLS(t)
		l = tls.NewListener(l, s.srv.TLSConfig)
	}
	for _, f := range configure {
		f(s.srv)
	}
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *sink) all() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.mails...)
}

// count returns how many accepted mails went to to.
func (s *sink) count(to string) int {
	n := 0
	for _, m := range s.all() {
		if m.to == to {
			n++
		}
	}
	return n
}

type sinkSession struct {
	s      *sink
	c      *smtp.Conn
	tls    bool
	authed bool
	from   string
	to     []string
}

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.s.users == nil {
		return nil
	}
	if ss.s.mechs != nil {
		return ss.s.mechs
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if p, ok := ss.s.users[user]; ok && p == pass {
			ss.authed = true
			ss.s.auths.Add(1)
			return nil
		}
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login).
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // an initial response carries the user name
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.users != nil && !ss.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.rcpt != nil {
		if err := ss.s.rcpt(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(ss.to) != 1 {
		return errors.New("sink: want exactly one recipient")
	}
	m := sunk{from: ss.from, to: ss.to[0], data: b, tls: ss.tls}
	if !m.tls {
		_, m.tls = ss.c.TLSConnectionState()
	}
	if ss.s.hold != nil {
		ss.s.hold(m)
	}
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

// testTLS returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1 and localhost.
func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, _ := testcert.Pair(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// clientTLS trusts srv's certificate.
func clientTLS(t testing.TB, srv *tls.Config) *tls.Config {
	t.Helper()
	cert, err := x509.ParseCertificate(srv.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool}
}
