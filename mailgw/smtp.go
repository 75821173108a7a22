package mailgw

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/metrics"
	"github.com/trackerd/trackerd/mailgw/auth"
	"github.com/trackerd/trackerd/store"
)

// Listener is the inbound SMTP or LMTP server ([smtp], DESIGN §2 and §5):
// it takes mail for the tracker's address and its sub-addresses only, and
// answers 250 to a mail only after the transaction that filed it has
// committed. Mails arriving on concurrent sessions are filed together in
// shared transactions (group commit, see committer).
//
// Replies follow RFC 5321 §4.2 and RFC 3463: our own faults are 4xx with
// a generic text, the sender's faults 5xx with a text saying what to fix;
// every error is turned into a reply by smtpReply.
type Listener struct {
	gw     *Gateway
	log    *slog.Logger
	lmtp   bool
	source string // "smtp" or "lmtp", the gateway's Mail.Source
	server *smtp.Server
	limits connLimits
	gate   gate
	commit *committer
	connID atomic.Uint64
	// auth checks senders (trust.go); nil when mailgw.trust is "any".
	auth *auth.Checker
	// rate is smtp.max_connections_per_ip_minute (limits.go).
	rate *connRate
	// ctx is for the store work of sessions: it outlives the first
	// signal, so that mails in flight during the drain are filed.
	ctx context.Context
}

// NewListener builds the listener of gw's config ([smtp]), logging to
// log. It fails only when the TLS certificate or key cannot be loaded.
// Nothing listens until Serve.
func NewListener(gw *Gateway, log *slog.Logger) (*Listener, error) {
	c := gw.cfg.SMTP
	l := &Listener{
		gw:     gw,
		log:    log,
		lmtp:   c.LMTP,
		source: "smtp",
		limits: connLimits{max: c.MaxConnections, perIP: c.MaxConnectionsPerIP},
		ctx:    context.Background(),
		auth:   gw.checker(),
		rate:   newConnRate(c.MaxConnectionsPerIPMinute),
	}
	if c.LMTP {
		l.source = "lmtp"
	}
	s := smtp.NewServer(smtp.BackendFunc(l.newSession))
	// Every limit explicitly (go-smtp's zero values mean "unlimited").
	s.Domain = gw.addr.domain
	s.LMTP = c.LMTP
	s.Network = "tcp"
	s.MaxMessageBytes = c.MaxMessageBytes
	s.MaxRecipients = c.MaxRecipients
	s.MaxLineLength = c.MaxLineLength
	s.ReadTimeout = time.Duration(c.ReadTimeout)
	s.WriteTimeout = time.Duration(c.WriteTimeout)
	// The gateway reads raw 8-bit and UTF-8 headers (RFC 6531, RFC 6152).
	s.EnableSMTPUTF8 = true
	s.AllowInsecureAuth = false // no AUTH is offered at all
	s.ErrorLog = errorLog{log: log}
	if c.TLSCert != "" && c.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("smtp: load smtp.tls_cert and smtp.tls_key: %w", err)
		}
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	l.server = s
	l.commit = newCommitter(gw, log)
	return l, nil
}

// Listen opens the listening socket of smtp.listen.
func (l *Listener) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", l.gw.cfg.SMTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("smtp: listen on %s: %w", l.gw.cfg.SMTP.Listen, err)
	}
	return ln, nil
}

// Serve serves connections on ln until ctx is cancelled, then drains:
// new connections are answered 421 and closed, new transactions are
// refused with 421, mails already in DATA are filed and answered, and
// then every connection is closed. It returns when all its goroutines
// have ended; ln is closed. An error means the listener failed.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	l.ctx = context.WithoutCancel(ctx)
	g := &guard{Listener: ln, l: l, conns: map[*trackedConn]struct{}{}, perIP: map[string]int{}}

	stopCommit := make(chan struct{})
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		l.commit.run(l.ctx, stopCommit)
	}()
	served := make(chan error, 1)
	go func() { served <- l.server.Serve(g) }()
	l.log.Info("smtp listening", "addr", ln.Addr().String(), "lmtp", l.lmtp, "starttls", l.server.TLSConfig != nil)

	var err error
	select {
	case err = <-served:
		// The socket failed: stop taking mail at once.
		err = fmt.Errorf("smtp: serve: %w", err)
		l.gate.drain()
	case <-ctx.Done():
		drained := l.gate.drain()
		g.draining.Store(true)
		l.log.Info("smtp draining: finishing mails in flight", "in_flight", l.gate.inFlight())
		<-drained
	}
	// No mail is in flight and none can start: end every session at its
	// next read (after the reply it is writing, if any), and wait for
	// go-smtp's goroutines. A client that does not even read its replies
	// has its connection closed after closeGrace.
	shut := make(chan error, 1)
	go func() { shut <- l.server.Shutdown(context.WithoutCancel(ctx)) }()
	g.endSessions()
	var serr error
	select {
	case serr = <-shut:
	case <-time.After(closeGrace):
		g.closeAll()
		serr = <-shut
	}
	if serr != nil && !errors.Is(serr, smtp.ErrServerClosed) && err == nil {
		err = fmt.Errorf("smtp: shutdown: %w", serr)
	}
	if err == nil {
		<-served
	}
	g.refusals.Wait()
	close(stopCommit)
	<-commitDone
	l.log.Info("smtp stopped")
	return err
}

// gate counts the mails in flight (from DATA to the reply) and refuses
// new ones once draining.
type gate struct {
	mu       sync.Mutex
	draining bool
	inflight int
	idle     chan struct{} // closed when draining and inflight is 0
}

// enter admits one mail; false once draining.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		return false
	}
	g.inflight++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if g.draining && g.inflight == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

func (g *gate) closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.draining
}

func (g *gate) inFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight
}

// drain stops admitting mails and returns a channel closed when the last
// one in flight has left.
func (g *gate) drain() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	if g.draining {
		if g.idle != nil {
			return g.idle
		}
		close(ch)
		return ch
	}
	g.draining = true
	if g.inflight == 0 {
		close(ch)
		return ch
	}
	g.idle = ch
	return ch
}

// closeGrace is how long the end of a drain waits for sessions to end at
// their next read before it closes their connections.
const closeGrace = 5 * time.Second

// connLimits are smtp.max_connections and smtp.max_connections_per_ip.
type connLimits struct {
	max, perIP int
}

// guard wraps the listening socket: it enforces the connection limits
// and, while draining, answers every new connection 421 itself, so go-smtp
// only ever sees admitted connections.
type guard struct {
	net.Listener
	l        *Listener
	draining atomic.Bool    // new connections are refused
	closing  atomic.Bool    // admitted sessions end at their next read
	refusals sync.WaitGroup // goroutines writing a 421 to a refused connection

	mu    sync.Mutex
	total int
	perIP map[string]int
	conns map[*trackedConn]struct{}
}

// Accept returns the next admitted connection.
func (g *guard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		id := strconv.FormatUint(g.l.connID.Add(1), 36)
		why := g.admit(ip)
		if why == "" {
			metrics.SMTPSessions.WithLabelValues("accepted").Inc()
			tc := &trackedConn{Conn: c, g: g, ip: ip, id: id}
			g.mu.Lock()
			g.conns[tc] = struct{}{}
			g.mu.Unlock()
			return tc, nil
		}
		metrics.SMTPSessions.WithLabelValues("refused").Inc()
		g.l.log.Info("smtp connection refused", "conn_id", id, "remote", c.RemoteAddr().String(), "reason", why)
		g.refusals.Add(1)
		go func() {
			defer g.refusals.Done()
			// RFC 5321 §3.1: 421 in place of the greeting, then close.
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, "421 4.3.2 "+g.l.server.Domain+" "+why+", try again later\r\n")
			_ = c.Close()
		}()
	}
}

// admit takes a connection slot for ip, or says why there is none.
func (g *guard) admit(ip string) string {
	if g.draining.Load() {
		return "shutting down"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.l.limits.max {
		return "too many connections"
	}
	if g.perIP[ip] >= g.l.limits.perIP {
		return "too many connections from your address"
	}
	if !g.l.rate.allow(ip, time.Now()) {
		return "too many connections from your address in the last minute"
	}
	g.total++
	g.perIP[ip]++
	return ""
}

func (g *guard) release(tc *trackedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.conns[tc]; !ok {
		return
	}
	delete(g.conns, tc)
	g.total--
	if g.perIP[tc.ip]--; g.perIP[tc.ip] <= 0 {
		delete(g.perIP, tc.ip)
	}
}

func (g *guard) admitted() []*trackedConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	conns := make([]*trackedConn, 0, len(g.conns))
	for tc := range g.conns {
		conns = append(conns, tc)
	}
	return conns
}

// endSessions makes every session end at its next read, with a 421 (RFC
// 5321 §3.8) on a plain connection; a session blocked in a read is woken.
// A reply being written is finished first: only the session's own
// goroutine reads, so nothing else writes to the connection meanwhile.
func (g *guard) endSessions() {
	g.closing.Store(true)
	for _, tc := range g.admitted() {
		_ = tc.SetReadDeadline(time.Now())
	}
}

// closeAll closes every admitted connection.
func (g *guard) closeAll() {
	for _, tc := range g.admitted() {
		_ = tc.Close()
	}
}

// trackedConn is an admitted connection; closing it frees its slot.
type trackedConn struct {
	net.Conn
	g       *guard
	ip      string
	id      string      // conn_id in logs
	tls     atomic.Bool // STARTTLS was done: nothing may be written past TLS
	once    sync.Once
	byeOnce sync.Once
}

// Read ends the session once the listener is closing (see endSessions):
// io.EOF makes go-smtp end the session quietly, after our own 421.
func (c *trackedConn) Read(b []byte) (int, error) {
	if c.g.closing.Load() {
		c.bye()
		return 0, io.EOF
	}
	n, err := c.Conn.Read(b)
	if err != nil && c.g.closing.Load() {
		c.bye()
		return n, io.EOF
	}
	return n, err
}

func (c *trackedConn) bye() {
	c.byeOnce.Do(func() {
		if c.tls.Load() {
			return
		}
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c.Conn, "421 4.3.2 "+c.g.l.server.Domain+" shutting down, try again later\r\n")
	})
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.g.release(c) })
	return c.Conn.Close()
}

// remoteIP is the IP address of a connection's remote end.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// connOf finds the trackedConn under a (possibly TLS) connection.
func connOf(c net.Conn) *trackedConn {
	for {
		switch x := c.(type) {
		case *trackedConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

// newSession is go-smtp's Backend: called at EHLO/HELO/LHLO (again after
// STARTTLS).
func (l *Listener) newSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{l: l, c: c, remote: c.Conn().RemoteAddr().String()}
	_, s.tls = c.TLSConnectionState()
	if tc := connOf(c.Conn()); tc != nil {
		s.id = tc.id
		if s.tls {
			tc.tls.Store(true)
		}
	} else {
		s.id = strconv.FormatUint(l.connID.Add(1), 36)
	}
	s.log = l.log.With("conn_id", s.id, "remote", s.remote)
	s.log.Debug("smtp session", "helo", c.Hostname(), "tls", s.tls)
	return s, nil
}

// session is one client's conversation; go-smtp calls its methods from
// the connection's goroutine, one at a time.
type session struct {
	l      *Listener
	c      *smtp.Conn
	id     string
	remote string
	tls    bool
	log    *slog.Logger

	from       string
	nullSender bool
	rcpts      []string // accepted, without duplicates
}

func (s *session) Reset() {
	s.from, s.nullSender, s.rcpts = "", false, nil
}

// Logout is called when the connection closes, and after a STARTTLS
// handshake (before the client's new EHLO starts a new session): from
// then on nothing may be written to the connection outside TLS.
func (s *session) Logout() error {
	if _, ok := s.c.TLSConnectionState(); ok {
		if tc := connOf(s.c.Conn()); tc != nil {
			tc.tls.Store(true)
		}
	}
	return nil
}

// Mail starts a transaction (RFC 5321 §4.1.1.2). MAIL FROM:<> is the
// null sender of bounces (§4.5.5).
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.l.gate.closed() {
		return s.l.smtpReply(errDraining)
	}
	s.Reset()
	s.from, s.nullSender = from, from == ""
	return nil
}

// Rcpt accepts the tracker's address and its sub-addresses only: the
// listener is never a relay (DESIGN §5). A sub-address naming an issue
// that does not exist is refused here, before the mail is sent.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.l.gate.closed() {
		return s.l.smtpReply(errDraining)
	}
	if err := s.l.checkRecipient(s.l.ctx, to); err != nil {
		s.log.Info("recipient refused", "from", s.from, "rcpt", to, "reason", err.Error())
		return s.l.smtpReply(err)
	}
	for _, r := range s.rcpts {
		if strings.EqualFold(r, to) {
			return nil
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data reads the mail, files it through the committer and answers when
// its transaction has committed. On LMTP, go-smtp gives every recipient
// this same reply (RFC 2033 §4.2): the mail is filed once, for all of
// them.
func (s *session) Data(r io.Reader) error {
	if !s.l.gate.enter() {
		_, _ = io.Copy(io.Discard, r)
		return s.l.smtpReply(errDraining)
	}
	defer s.l.gate.leave()
	res, err := s.deliver(r)
	if err != nil {
		return s.l.smtpReply(err)
	}
	switch res.Status {
	case store.InboundRejected:
		return s.l.smtpReply(&refusal{code: 554, enh: smtp.EnhancedCode{5, 6, 0}, text: "not filed: " + res.Reason})
	case store.InboundIgnored:
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
			Message: replyText("accepted, not filed: "+res.Reason, 0)}
	case store.InboundQuarantined:
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
			Message: replyText("accepted, held for review: "+res.Reason, 0)}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: fmt.Sprintf("filed as issue %d", res.IssueID)}
}

// deliver reads and files one mail. An error means nothing was filed.
func (s *session) deliver(r io.Reader) (Result, error) {
	var buf bytes.Buffer
	buf.Grow(8 << 10)
	if _, err := buf.ReadFrom(r); err != nil {
		s.log.Info("mail refused", "from", s.from, "reason", err.Error())
		return Result{}, err
	}
	received := time.Now()
	m := Mail{
		Raw:          buf.Bytes(),
		Source:       s.l.source,
		EnvelopeFrom: s.from,
		NullSender:   s.nullSender,
		Recipients:   append([]string(nil), s.rcpts...),
		Received:     received,
		RefuseInline: true,
		Log:          s.log,
	}
	metrics.MailsReceived.WithLabelValues(s.l.source).Inc()
	p := s.l.gw.parse(&m) // here, beside the commit of the batch before
	// The sender's SPF, DKIM and DMARC (trust.go), also on this goroutine.
	s.l.check(s.l.ctx, &m, &p, net.ParseIP(remoteIP(s.c.Conn().RemoteAddr())), s.c.Hostname())
	s.log.Info("mail received", "message_id", p.messageID, "from", s.from, "rcpts", len(m.Recipients), "size", len(m.Raw))
	res, err := s.l.commit.file(s.l.ctx, &m, &p, received)
	if err != nil {
		s.log.Warn("mail deferred", "message_id", p.messageID, "error", err.Error())
		return Result{}, err
	}
	return res, nil
}

// checkRecipient says whether the listener takes mail for rcpt: the
// tracker's address, local+N and local+N-(un)subscribe for an existing
// issue N, and the notifier's bounce address local+bounce-TOKEN.
func (l *Listener) checkRecipient(ctx context.Context, rcpt string) error {
	sa, ok := l.gw.addr.parse(rcpt)
	if !ok {
		return &refusal{code: 550, enh: smtp.EnhancedCode{5, 1, 1},
			text: fmt.Sprintf("<%s>: no such recipient here; this server takes mail only for %s and its sub-addresses (relaying denied)", rcpt, l.gw.cfg.Tracker.Address)}
	}
	if sa.issueID == 0 {
		return nil
	}
	if _, err := l.gw.st.Issue(ctx, sa.issueID); errors.Is(err, store.ErrNotFound) {
		return &refusal{code: 550, enh: smtp.EnhancedCode{5, 1, 1},
			text: fmt.Sprintf("<%s>: there is no issue %d in this tracker; write to %s to open a new issue", rcpt, sa.issueID, l.gw.cfg.Tracker.Address)}
	} else if err != nil {
		return fmt.Errorf("smtp: look up issue %d: %w", sa.issueID, err)
	}
	return nil
}

// refusal is a definite fault of the sender's, refused with a 5xx whose
// text says what to fix.
type refusal struct {
	code int
	enh  smtp.EnhancedCode
	text string
}

func (r *refusal) Error() string { return r.text }

// errDraining: serve is shutting down; the client must come back.
var errDraining = errors.New("shutting down")

// tempFailure is the one reply to every fault of ours: generic, so that
// no internal error text reaches a client (RFC 3463 4.3.0, "other or
// undefined mail system status").
var tempFailure = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "temporary local problem, please try again later"}

// smtpReply maps every error of the listener to the reply the client
// gets, always as an unwrapped *smtp.SMTPError (go-smtp turns any other
// error from Data into a permanent 554 carrying the error text):
//
//   - a refusal (unknown recipient, no such issue, a mail the gateway
//     rejected): its own 5xx code and text;
//   - a mail over smtp.max_message_bytes: 552 5.3.4 (RFC 1870);
//   - a line over smtp.max_line_length: 500 5.5.2;
//   - shutting down: 421 4.3.2;
//   - anything else, our own faults (store down, disk full) and a client
//     that went away mid-DATA: 451 4.3.0 with a generic text.
func (l *Listener) smtpReply(err error) error {
	if err == nil {
		return nil
	}
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		return &smtp.SMTPError{Code: ref.code, EnhancedCode: ref.enh, Message: replyText(ref.text, 5)}
	case errors.Is(err, smtp.ErrDataTooLarge):
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: "message too large: the limit is " + strconv.FormatInt(l.server.MaxMessageBytes, 10) + " bytes"}
	case errors.Is(err, smtp.ErrTooLongLine):
		return &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
			Message: "line too long: the limit is " + strconv.Itoa(l.server.MaxLineLength) + " bytes; wrap lines or use quoted-printable (RFC 5321 section 4.5.3.1.6)"}
	case errors.Is(err, errDraining):
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
			Message: "shutting down, please try again later"}
	}
	return tempFailure
}

// replyText makes text safe for one SMTP reply: printable ASCII only
// (the reply is not SMTPUTF8), at most 400 bytes a line, and when
// maxLines > 1 wrapped onto at most that many lines, which go-smtp sends
// as a multi-line reply (RFC 5321 §4.2.1, §4.5.3.1.5).
func replyText(text string, maxLines int) string {
	const width = 400
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case r < ' ' || r == 0x7f:
		case r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	words := strings.Fields(b.String())
	var lines []string
	line := ""
	for _, w := range words {
		if len(w) > width {
			w = w[:width]
		}
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	if maxLines < 1 {
		maxLines = 1
	}
	if len(lines) > maxLines {
		lines = lines[:maxLines]
	}
	return strings.Join(lines, "\n")
}

// errorLog hands go-smtp's own error lines (a panic in a handler, a
// failed accept) to the logger.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.print(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.print(fmt.Sprintln(v...)) }

// print logs a panic as an error and the rest (a client that reset the
// connection, a failed TLS handshake) as warnings.
func (e errorLog) print(msg string) {
	msg = strings.TrimSpace(msg)
	if strings.Contains(msg, "panic") {
		e.log.Error("smtp: " + msg)
		return
	}
	e.log.Warn("smtp: " + msg)
}
