package poll_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/testcert"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/mailgw/poll"
	"github.com/trackerd/trackerd/store"
)

// env is a store with a gateway and a Locker, and a log a test can read.
type env struct {
	st     *store.Store
	gw     *mailgw.Gateway
	locker *store.Locker
	log    *logBuffer
}

func newEnv(t *testing.T, st *store.Store) *env {
	t.Helper()
	cfg := config.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lb := &logBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{st: st, gw: mailgw.New(st, cfg, log, mailgw.Options{}), locker: st.NewLocker(), log: lb}
	t.Cleanup(func() {
		e.locker.Close()
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	return e
}

// poller returns a Poller for the [[poll]] entry p (its password set).
func (e *env) poller(t *testing.T, p config.Poll, o poll.Options) *poll.Poller {
	t.Helper()
	if p.Name == "" {
		p.Name = "support"
	}
	if p.After == "" {
		p.After = "delete"
	}
	if p.Schedule == "" {
		p.Schedule = "*/5 * * * *"
	}
	mb, err := poll.FromConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	o.Log = slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	return poll.New(mb, e.gw, e.st, e.locker, o)
}

// pass runs one pass and fails the test on an error.
func pass(t *testing.T, p *poll.Poller) poll.Stats {
	t.Helper()
	st, err := p.Pass(t.Context())
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	return st
}

// counts returns the number of stored messages and of mails archived as
// filed: a mail filed twice would show in both.
func (e *env) counts(t *testing.T) (messages, filed int) {
	t.Helper()
	s, err := e.st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Messages, s.Inbound[store.InboundFiled]
}

// wantCounts checks counts and that every filed Message-ID is filed once.
func (e *env) wantCounts(t *testing.T, messages, filed int) {
	t.Helper()
	m, f := e.counts(t)
	if m != messages || f != filed {
		t.Fatalf("store holds %d messages and %d filed mails, want %d and %d", m, f, messages, filed)
	}
	in, err := e.st.ListInbound(context.Background(), store.InboundFilter{Status: store.InboundFiled})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, i := range in {
		if seen[i.MessageID] {
			t.Fatalf("Message-ID %s filed twice", i.MessageID)
		}
		seen[i.MessageID] = true
	}
}

// archive is n generated tracker mails (testmail), the same for a seed.
func archive(n int, seed uint64) [][]byte {
	ms := testmail.Archive(n, seed)
	for i, m := range ms {
		// IMAP and POP3 servers hand out CRLF lines.
		if !bytes.Contains(m, []byte("\r\n")) {
			ms[i] = bytes.ReplaceAll(m, []byte("\n"), []byte("\r\n"))
		}
	}
	return ms
}

// logBuffer is the pollers' log, read by the tests while they write.
type logBuffer struct{ testenv.Buffer }

func (b *logBuffer) Count(s string) int { return strings.Count(b.String(), s) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memServer is go-imap's in-memory IMAP server on a loopback port, with
// a session wrapper that adds XOAUTH2 and can make after-actions fail.
type memServer struct {
	Addr  string // plain, with STARTTLS offered
	TLS   string // implicit TLS
	Roots *x509.CertPool
	user  *imapmemserver.User
	// Token is the XOAUTH2 token accepted; FailAck makes STORE, MOVE,
	// COPY and EXPUNGE fail.
	Token   atomic.Pointer[string]
	FailAck atomic.Bool
}

const (
	memUser     = "tracker@example.org"
	memPassword = "secret"
)

// startMem starts a server. caps nil means IMAP4rev1 and IMAP4rev2
// (UIDPLUS, MOVE, IDLE); {IMAP4rev1} alone has none of them.
func startMem(t *testing.T, caps imap.CapSet) *memServer {
	t.Helper()
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	m := &memServer{user: imapmemserver.NewUser(memUser, memPassword)}
	if err := m.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem := imapmemserver.New()
	mem.AddUser(m.user)
	cert, roots := testcert.Pair(t)
	m.Roots = roots
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &memSession{SessionIMAP4rev2: mem.NewSession().(imapserver.SessionIMAP4rev2), srv: m}, nil, nil
		},
		Caps:         caps,
		TLSConfig:    tlsConfig,
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	for _, dst := range []*string{&m.Addr, &m.TLS} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*dst = ln.Addr().String()
		if dst == &m.TLS {
			ln = tls.NewListener(ln, tlsConfig)
		}
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return m
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// client logs in to the server for a test's own looking and appending.
func (m *memServer) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(m.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(memUser, memPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (m *memServer) url(scheme, addr, folder string) string {
	return fmt.Sprintf("%s://%s@%s/%s", scheme, memUser, addr, folder)
}

type memSession struct {
	imapserver.SessionIMAP4rev2
	srv *memServer
}

var errInjected = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "injected failure"}

func (s *memSession) AuthenticateMechanisms() []string { return []string{"PLAIN", "XOAUTH2"} }

func (s *memSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, user, pass string) error { return s.Login(user, pass) }), nil
	case "XOAUTH2":
		return &xoauth2Server{s: s}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "unsupported mechanism"}
}

func (s *memSession) Store(w *imapserver.FetchWriter, n imap.NumSet, f *imap.StoreFlags, o *imap.StoreOptions) error {
	if s.srv.FailAck.Load() {
		return errInjected
	}
	return s.SessionIMAP4rev2.Store(w, n, f, o)
}

func (s *memSession) Move(w *imapserver.MoveWriter, n imap.NumSet, dest string) error {
	if s.srv.FailAck.Load() {
		return errInjected
	}
	return s.SessionIMAP4rev2.Move(w, n, dest)
}

func (s *memSession) Copy(n imap.NumSet, dest string) (*imap.CopyData, error) {
	if s.srv.FailAck.Load() {
		return nil, errInjected
	}
	return s.SessionIMAP4rev2.Copy(n, dest)
}

func (s *memSession) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if s.srv.FailAck.Load() {
		return errInjected
	}
	return s.SessionIMAP4rev2.Expunge(w, uids)
}

// xoauth2Server checks "user=U\x01auth=Bearer T\x01\x01" against the
// server's token; a bad token gets Google's JSON challenge, then NO.
type xoauth2Server struct {
	s      *memSession
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "invalid token"}
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, token string
	for _, f := range strings.Split(string(resp), "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			token = v
		}
	}
	if want := x.s.srv.Token.Load(); want == nil || token != *want {
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	if err := x.s.Login(user, memPassword); err != nil {
		return nil, true, err
	}
	return nil, true, nil
}
