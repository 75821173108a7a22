// Package pop3 is a POP3 client: RFC 1939 (the protocol, USER/PASS and
// APOP), RFC 2449 (CAPA and extended response codes), RFC 2595 (STLS) and
// RFC 5034 (AUTH with SASL, for XOAUTH2). It is what trackerd's poller
// needs and no more: no TOP, no pipelining.
//
// A Client is one session. Its methods send one command each and read its
// reply; they are not safe for concurrent use. Every read waits at most
// Options.Timeout for the server; a session that timed out or broke the
// protocol must be closed.
package pop3

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// DefaultTimeout is how long a Client waits for each read or write when
// Options.Timeout is 0.
const DefaultTimeout = time.Minute

// Options configure a Client. The zero value is usable.
type Options struct {
	// TLSConfig is used by DialTLS and StartTLS; nil means a default
	// config verifying the server's name.
	TLSConfig *tls.Config
	// Timeout bounds every read and every write on the connection; 0
	// means DefaultTimeout.
	Timeout time.Duration
	// Dialer dials the connection; nil means a net.Dialer with Timeout.
	Dialer *net.Dialer
}

func (o *Options) timeout() time.Duration {
	if o == nil || o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

func (o *Options) dialer() *net.Dialer {
	if o != nil && o.Dialer != nil {
		return o.Dialer
	}
	return &net.Dialer{Timeout: o.timeout()}
}

func (o *Options) tlsConfig(host string) *tls.Config {
	var c *tls.Config
	if o != nil && o.TLSConfig != nil {
		c = o.TLSConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Client is one POP3 session.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	opts    *Options
	host    string
	// greeting is the text of the server's +OK greeting; stamp is its
	// APOP timestamp ("<...>"), "" when it has none.
	greeting, stamp string
	tls             bool
}

// Dial connects to addr (host:port) without TLS and reads the greeting.
func Dial(ctx context.Context, addr string, o *Options) (*Client, error) {
	conn, err := o.dialer().DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: dial: %w", err)
	}
	c, err := NewClient(conn, hostOf(addr), o)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// DialTLS connects to addr with implicit TLS (pop3s, port 995) and reads
// the greeting.
func DialTLS(ctx context.Context, addr string, o *Options) (*Client, error) {
	d := &tls.Dialer{NetDialer: o.dialer(), Config: o.tlsConfig(hostOf(addr))}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3: dial tls: %w", err)
	}
	c, err := NewClient(conn, hostOf(addr), o)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.tls = true
	return c, nil
}

// NewClient starts a session on conn, which it then owns, and reads the
// greeting. host is the server's name for TLS verification in StartTLS.
func NewClient(conn net.Conn, host string, o *Options) (*Client, error) {
	c := &Client{timeout: o.timeout(), opts: o, host: host}
	c.setConn(conn)
	text, err := c.reply("greeting")
	if err != nil {
		return nil, err
	}
	c.greeting = text
	c.stamp = apopStamp(text)
	_, c.tls = conn.(*tls.Conn)
	return c, nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	dc := deadlineConn{Conn: conn, timeout: c.timeout}
	c.r = bufio.NewReaderSize(dc, 16<<10)
	c.w = bufio.NewWriter(dc)
}

// deadlineConn gives every read and write its own deadline, so a server
// that stops answering fails the session after the timeout while a long
// transfer that keeps moving is never cut.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d deadlineConn) Read(p []byte) (int, error) {
	if err := d.Conn.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.Conn.Read(p)
}

func (d deadlineConn) Write(p []byte) (int, error) {
	if err := d.Conn.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.Conn.Write(p)
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// apopStamp returns the RFC 1939 §7 timestamp in a greeting: the last
// "<...>" with an "@" inside, or "".
func apopStamp(greeting string) string {
	end := strings.LastIndexByte(greeting, '>')
	if end < 0 {
		return ""
	}
	start := strings.LastIndexByte(greeting[:end], '<')
	if start < 0 || !strings.Contains(greeting[start:end], "@") {
		return ""
	}
	return greeting[start : end+1]
}

// Greeting is the text of the server's greeting.
func (c *Client) Greeting() string { return c.greeting }

// TLS reports whether the session runs over TLS (pop3s or after STLS).
func (c *Client) TLS() bool { return c.tls }

// CanAPOP reports whether the greeting offered APOP (carried a timestamp).
func (c *Client) CanAPOP() bool { return c.stamp != "" }

// cmd sends one command line. Arguments must not contain CR or LF.
func (c *Client) cmd(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("pop3: command contains a line break")
	}
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return fmt.Errorf("pop3: send: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("pop3: send: %w", err)
	}
	return nil
}

func (c *Client) reply(name string) (string, error) { return readReply(c.r, name) }

// simple sends a command and reads its single-line reply.
func (c *Client) simple(name, line string) (string, error) {
	if err := c.cmd(line); err != nil {
		return "", err
	}
	return c.reply(name)
}

// Caps are the server's capabilities from CAPA (RFC 2449 §5): each
// capability's name in upper case, mapped to its arguments.
type Caps map[string][]string

// Has reports whether the server announced name (any case).
func (cs Caps) Has(name string) bool {
	_, ok := cs[strings.ToUpper(name)]
	return ok
}

// SASL reports whether the server announced the SASL mechanism mech.
func (cs Caps) SASL(mech string) bool {
	for _, m := range cs["SASL"] {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// Capa asks for the server's capabilities. A server without CAPA (an
// RFC 1939-only one) answers -ERR: Capa then returns empty Caps and no
// error.
func (c *Client) Capa() (Caps, error) {
	if _, err := c.simple("CAPA", "CAPA"); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Caps{}, nil
		}
		return nil, err
	}
	lines, err := readListing(c.r, "CAPA")
	if err != nil {
		return nil, err
	}
	caps := Caps{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		caps[strings.ToUpper(f[0])] = f[1:]
	}
	return caps, nil
}

// StartTLS upgrades the session with STLS (RFC 2595 §4) using the
// Options' TLS config, verifying the server's certificate against the
// host given at dial time.
func (c *Client) StartTLS() error {
	if c.tls {
		return errors.New("pop3: STLS: already on TLS")
	}
	if _, err := c.simple("STLS", "STLS"); err != nil {
		return err
	}
	if c.r.Buffered() > 0 {
		// A server must not send anything before the handshake; data
		// already here was sent in the clear and could be injected.
		return &ProtocolError{Cmd: "STLS", Problem: "data after the +OK, before the TLS handshake"}
	}
	tc := tls.Client(c.conn, c.opts.tlsConfig(c.host))
	if err := tc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return fmt.Errorf("pop3: STLS: %w", err)
	}
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("pop3: STLS: %w", err)
	}
	c.setConn(tc)
	c.tls = true
	return nil
}

// Login authenticates with USER and PASS (RFC 1939 §7).
func (c *Client) Login(user, password string) error {
	if _, err := c.simple("USER", "USER "+user); err != nil {
		return err
	}
	_, err := c.simple("PASS", "PASS "+password)
	return err
}

// APOP authenticates with the digest of the greeting's timestamp and the
// secret (RFC 1939 §7), which never crosses the wire.
func (c *Client) APOP(user, secret string) error {
	if c.stamp == "" {
		return errors.New("pop3: APOP: the server's greeting has no timestamp (APOP not offered)")
	}
	sum := md5.Sum([]byte(c.stamp + secret))
	_, err := c.simple("APOP", "APOP "+user+" "+hex.EncodeToString(sum[:]))
	return err
}

// Auth authenticates with a SASL mechanism (RFC 5034), sending the
// initial response with the command when there is one.
func (c *Client) Auth(sc sasl.Client) error {
	mech, ir, err := sc.Start()
	if err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	line := "AUTH " + mech
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "=" // RFC 5034 §4: an empty initial response
		}
		line += " " + enc
	}
	if err := c.cmd(line); err != nil {
		return err
	}
	for {
		l, err := readLine(c.r, "AUTH")
		if err != nil {
			return err
		}
		chal, ok := strings.CutPrefix(l, "+ ")
		if !ok && l != "+" {
			// A status line: parse it as one.
			_, err := readReply(bufioLine(l), "AUTH")
			return err
		}
		dec, err := base64.StdEncoding.DecodeString(chal)
		if err != nil {
			return &ProtocolError{Cmd: "AUTH", Problem: "challenge is not base64"}
		}
		resp, err := sc.Next(dec)
		if err != nil {
			// RFC 5034 §4: "*" cancels the exchange.
			_ = c.cmd("*")
			_, _ = c.reply("AUTH")
			return fmt.Errorf("pop3: AUTH: %w", err)
		}
		if err := c.cmd(base64.StdEncoding.EncodeToString(resp)); err != nil {
			return err
		}
	}
}

// bufioLine returns a reader over one line, for readReply.
func bufioLine(l string) *bufio.Reader {
	return bufio.NewReader(strings.NewReader(l + "\r\n"))
}

// Stat returns the number of messages and their total size in octets.
func (c *Client) Stat() (count int, size int64, err error) {
	text, err := c.simple("STAT", "STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, &ProtocolError{Cmd: "STAT", Problem: fmt.Sprintf("reply %q", clip(text))}
	}
	n, err1 := strconv.Atoi(f[0])
	s, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || n < 0 || s < 0 {
		return 0, 0, &ProtocolError{Cmd: "STAT", Problem: fmt.Sprintf("reply %q", clip(text))}
	}
	return n, s, nil
}

// Message is one message of the maildrop: its number in this session,
// and, depending on the call, its size in octets or its unique id.
type Message struct {
	Num  int
	Size int64
	UID  string
}

// List returns every message's number and size (LIST, RFC 1939 §5).
func (c *Client) List() ([]Message, error) {
	return c.listing("LIST", func(m *Message, arg string) error {
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			return errors.New("bad size")
		}
		m.Size = n
		return nil
	})
}

// UIDL returns every message's number and unique id (UIDL, RFC 1939 §7).
// A server without UIDL answers -ERR, returned as an *Error.
func (c *Client) UIDL() ([]Message, error) {
	return c.listing("UIDL", func(m *Message, arg string) error {
		// RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
		if len(arg) == 0 || len(arg) > 70 || strings.ContainsFunc(arg, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return errors.New("bad unique-id")
		}
		m.UID = arg
		return nil
	})
}

func (c *Client) listing(name string, set func(*Message, string) error) ([]Message, error) {
	if _, err := c.simple(name, name); err != nil {
		return nil, err
	}
	lines, err := readListing(c.r, name)
	if err != nil {
		return nil, err
	}
	ms := make([]Message, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, &ProtocolError{Cmd: name, Problem: fmt.Sprintf("line %q", clip(l))}
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 {
			return nil, &ProtocolError{Cmd: name, Problem: fmt.Sprintf("line %q: bad message number", clip(l))}
		}
		m := Message{Num: n}
		if err := set(&m, f[1]); err != nil {
			return nil, &ProtocolError{Cmd: name, Problem: fmt.Sprintf("line %q: %v", clip(l), err)}
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// Retr retrieves message num (RETR, RFC 1939 §5) with the byte-stuffing
// removed and its line endings as the server sent them. A message larger
// than limit octets is read to its end, discarded, and reported as
// ErrTooLarge; the session goes on.
func (c *Client) Retr(num int, limit int64) ([]byte, error) {
	if _, err := c.simple("RETR", "RETR "+strconv.Itoa(num)); err != nil {
		return nil, err
	}
	return readBody(c.r, "RETR", limit)
}

// Dele marks message num deleted (DELE, RFC 1939 §5). The deletion
// happens only when Quit succeeds; a session that ends otherwise deletes
// nothing.
func (c *Client) Dele(num int) error {
	_, err := c.simple("DELE", "DELE "+strconv.Itoa(num))
	return err
}

// Noop sends NOOP.
func (c *Client) Noop() error {
	_, err := c.simple("NOOP", "NOOP")
	return err
}

// Rset unmarks every message marked deleted in this session (RSET).
func (c *Client) Rset() error {
	_, err := c.simple("RSET", "RSET")
	return err
}

// Quit ends the session (QUIT, RFC 1939 §6): the server enters the UPDATE
// state and removes the messages marked deleted. Only a nil error means
// the deletions happened. The connection is closed either way.
func (c *Client) Quit() error {
	_, err := c.simple("QUIT", "QUIT")
	c.conn.Close()
	return err
}

// Close closes the connection without QUIT: messages marked deleted stay.
func (c *Client) Close() error {
	return c.conn.Close()
}
