package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Relay is the Sender that hands mail to an SMTP relay (outgoing.relay):
// one SMTP transaction per mail (MAIL FROM the envelope sender, RCPT TO
// the one recipient, DATA), on up to Connections connections at once,
// each reused for many mails and closed after idleTimeout unused.
//
// URL schemes: smtp:// (plain SMTP, port 25 by default; no TLS),
// smtp+starttls:// (STARTTLS required before anything else, port 587),
// smtps:// (TLS from the start, RFC 8314, port 465). With a Username,
// AUTH PLAIN is used when the relay offers it, else AUTH LOGIN; AUTH is
// refused over a connection that is neither TLS nor to a loopback
// address, so a password never crosses a network in clear.
//
// Errors (RFC 5321 §4.2.1): a 5xx answer to MAIL, RCPT or the data is a
// *PermanentError (the mail will never be accepted), except 530/535/538
// which are the relay's complaint about our own session (authentication,
// TLS) and so our fault; every other failure is temporary. Failures to
// connect, to start TLS or to authenticate are *UnavailableError: the
// relay takes no mail at all now.
type Relay struct {
	o     RelayOptions
	addr  string // host:port
	mode  string // "smtp", "smtp+starttls", "smtps"
	tls   *tls.Config
	slots chan struct{}
	mu    sync.Mutex
	idle  []*relayConn
}

// RelayOptions configure a Relay.
type RelayOptions struct {
	// URL is smtp://host[:port], smtp+starttls://host[:port] or
	// smtps://host[:port].
	URL string
	// Username and Password, when Username is set, are used for SMTP AUTH.
	Username, Password string
	// Connections is the most connections open at once; 0 means 1.
	Connections int
	// Timeout bounds connecting and each wait for an answer; 0 means 2
	// minutes.
	Timeout time.Duration
	// TLSConfig is used for smtps and STARTTLS; nil means the system's
	// roots with the URL's host as the server name.
	TLSConfig *tls.Config
	// LocalName is the name sent in EHLO; "" means the host name.
	LocalName string
}

// idleTimeout is how long an unused connection is kept: below the 5
// minutes RFC 5321 §4.5.3.2.7 lets a server wait, and below Postfix's
// default smtpd_timeout, so a kept connection is rarely found closed.
const idleTimeout = 30 * time.Second

// NewRelay checks o and returns a Relay; it connects only when it sends.
func NewRelay(o RelayOptions) (*Relay, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if u.User != nil {
		return nil, errors.New("relay: the URL must not carry a user or password (use outgoing.username and password_file)")
	}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "25"
	case "smtp+starttls":
		port = "587"
	case "smtps":
		port = "465"
	default:
		return nil, fmt.Errorf("relay: unknown scheme %q (want smtp, smtp+starttls or smtps)", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("relay: %q names no host", o.URL)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.LocalName == "" {
		o.LocalName, _ = os.Hostname()
		if o.LocalName == "" || strings.ContainsAny(o.LocalName, " \r\n") {
			o.LocalName = "localhost"
		}
	}
	tc := o.TLSConfig
	if tc == nil {
		tc = &tls.Config{}
	} else {
		tc = tc.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return &Relay{o: o, addr: net.JoinHostPort(host, port), mode: u.Scheme, tls: tc, slots: make(chan struct{}, o.Connections)}, nil
}

// relayConn is one open SMTP session.
type relayConn struct {
	c        *smtp.Client
	raw      net.Conn // the TCP connection under c (and under TLS)
	lastUsed time.Time
}

func (rc *relayConn) close() { _ = rc.c.Close() }

// Send hands m to the relay, opening a connection or reusing an idle one.
// A reused connection that turns out to be closed (the relay timed it out)
// is replaced once, before anything of the mail was accepted.
func (r *Relay) Send(ctx context.Context, m *Mail) error {
	if m.To == "" || strings.ContainsFunc(m.To+m.EnvelopeFrom, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' }) {
		return permanentf("relay: bad envelope: from %q to %q", m.EnvelopeFrom, m.To)
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.slots }()
	for try := 0; ; try++ {
		rc, reused, err := r.conn(ctx)
		if err != nil {
			return err
		}
		stale, broken, err := r.transact(ctx, rc, m)
		if err == nil {
			if broken {
				rc.close()
			} else {
				rc.lastUsed = time.Now()
				r.put(rc)
			}
			return nil
		}
		var se *smtp.SMTPError
		if stale && reused && try == 0 && ctx.Err() == nil {
			rc.close()
			continue
		}
		if errors.As(err, &se) {
			// The session is fine; only this transaction failed.
			if broken || se.Code == 421 || r.reset(rc) != nil {
				rc.close()
			} else {
				rc.lastUsed = time.Now()
				r.put(rc)
			}
			switch {
			case se.Code == 530 || se.Code == 535 || se.Code == 538:
				return &UnavailableError{Err: fmt.Errorf("relay %s: %w", r.addr, err)}
			case se.Code >= 500:
				return &PermanentError{Err: fmt.Errorf("relay %s: %w", r.addr, err)}
			}
			return fmt.Errorf("relay %s: %w", r.addr, err)
		}
		rc.close()
		return fmt.Errorf("relay %s: %w", r.addr, err)
	}
}

// transact runs one mail transaction on rc. stale is true when the
// failure came before the relay answered anything of it (MAIL FROM did
// not get through), so nothing of m was accepted; broken is true when ctx
// ended meanwhile and closed the connection, which must not be reused.
func (r *Relay) transact(ctx context.Context, rc *relayConn, m *Mail) (stale, broken bool, err error) {
	// go-smtp has no context: closing the connection interrupts it.
	stop := context.AfterFunc(ctx, func() { _ = rc.raw.Close() })
	defer func() { broken = !stop() }()
	if err := rc.c.Mail(m.EnvelopeFrom, &smtp.MailOptions{Size: int64(len(m.Data))}); err != nil {
		// No answer, or 421 (the relay is closing the session, e.g. its
		// idle timeout): the session is gone, the mail untouched.
		var se *smtp.SMTPError
		return !errors.As(err, &se) || se.Code == 421, false, err
	}
	if err := rc.c.Rcpt(m.To, nil); err != nil {
		return false, false, err
	}
	w, err := rc.c.Data()
	if err != nil {
		return false, false, err
	}
	if _, err := w.Write(m.Data); err != nil {
		_ = w.Close()
		return false, false, err
	}
	return false, false, w.Close()
}

// reset aborts the current transaction so that rc can carry the next.
func (r *Relay) reset(rc *relayConn) error {
	if err := rc.c.Reset(); err != nil {
		return err
	}
	// go-smtp repeats EHLO after RSET; make it use our name.
	return rc.c.Hello(r.o.LocalName)
}

// conn returns an idle connection (reused true) or a new one.
func (r *Relay) conn(ctx context.Context) (rc *relayConn, reused bool, err error) {
	r.mu.Lock()
	for len(r.idle) > 0 {
		rc = r.idle[len(r.idle)-1]
		r.idle = r.idle[:len(r.idle)-1]
		if time.Since(rc.lastUsed) < idleTimeout {
			r.mu.Unlock()
			return rc, true, nil
		}
		go func(rc *relayConn) { _ = rc.c.Quit(); rc.close() }(rc)
	}
	r.mu.Unlock()
	rc, err = r.dial(ctx)
	if err != nil {
		return nil, false, &UnavailableError{Err: fmt.Errorf("relay %s: %w", r.addr, err)}
	}
	return rc, false, nil
}

// put keeps rc for the next mail.
func (r *Relay) put(rc *relayConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idle = append(r.idle, rc)
}

// dial opens and prepares a session: connection (TLS for smtps),
// greeting, EHLO, STARTTLS when required, AUTH when configured.
func (r *Relay) dial(ctx context.Context) (*relayConn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	d := net.Dialer{Timeout: r.o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	raw := conn // closing it interrupts whatever runs on top
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	if r.mode == "smtps" {
		tc := tls.Client(conn, r.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	var c *smtp.Client
	if r.mode == "smtp+starttls" {
		// go-smtp says EHLO localhost before STARTTLS; the EHLO after it
		// carries our name.
		if c, err = smtp.NewClientStartTLS(conn, r.tls); err != nil {
			raw.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = r.o.Timeout, r.o.Timeout
	if err := c.Hello(r.o.LocalName); err != nil {
		c.Close()
		return nil, err
	}
	_, isTLS := c.TLSConnectionState()
	if r.o.Username != "" {
		if !isTLS && !loopback(r.addr) {
			c.Close()
			return nil, errors.New("refusing SMTP AUTH over a connection without TLS (use smtps:// or smtp+starttls://)")
		}
		var a sasl.Client
		switch {
		case c.SupportsAuth("PLAIN"):
			a = sasl.NewPlainClient("", r.o.Username, r.o.Password)
		case c.SupportsAuth("LOGIN"):
			a = sasl.NewLoginClient(r.o.Username, r.o.Password)
		default:
			c.Close()
			return nil, errors.New("the relay offers neither AUTH PLAIN nor AUTH LOGIN")
		}
		if err := c.Auth(a); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return &relayConn{c: c, raw: raw, lastUsed: time.Now()}, nil
}

// loopback reports whether addr (host:port) is a loopback address or
// "localhost".
func loopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close ends every idle connection politely (QUIT). Connections in use
// are kept when their mail is done, until idleTimeout; Send may still be
// called after Close.
func (r *Relay) Close() error {
	r.mu.Lock()
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	for _, rc := range idle {
		_ = rc.c.Quit()
		rc.close()
	}
	return nil
}
