package poll

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/trackerd/trackerd/config"
)

// Mailbox is one mailbox to poll, from a [[poll]] entry or a URL.
type Mailbox struct {
	// Name is the [[poll]] name: in logs, in the gateway source
	// ("imap:NAME", "pop3:NAME") and in the metrics.
	Name string
	// Proto is "imap" or "pop3"; Security "tls" (imaps, pop3s),
	// "starttls" (imap+starttls, pop3+starttls: STARTTLS or STLS is
	// required) or "none".
	Proto, Security string
	// Addr is host:port, the port defaulting to the scheme's (143, 993,
	// 110, 995); Host is the host alone, for TLS verification.
	Addr, Host string
	// User is the login name. APOP (POP3 only) is set by the RFC 2384
	// URL form pop3://USER;AUTH=+APOP@host.
	User string
	APOP bool
	// Folder is the IMAP mailbox, INBOX when the URL has no path.
	Folder string
	// After is "delete", "flag" or "move"; MoveTo the folder for "move".
	After, MoveTo string
	// Password, or TokenFile and Token for XOAUTH2 (the file is read
	// again at every connection: tokens expire and are refreshed by
	// whoever writes the file).
	Password, TokenFile, Token string
	// Schedule (cron) or Idle, as in the config.
	Schedule string
	Idle     bool
	// InsecureSkipVerify skips TLS certificate verification.
	InsecureSkipVerify bool
}

// Key names the remote mailbox itself, independent of how it is reached
// and of the [[poll]] name: "imap://user@host:port/Folder" or
// "pop3://user@host:port". The cursor and the one-poller lock are kept
// under it, so `trackerd poll URL`, `poll NAME` and serve share them, and
// renaming an entry keeps its cursor.
func (m *Mailbox) Key() string {
	if m.Proto == "pop3" {
		return "pop3://" + m.User + "@" + m.Addr
	}
	return "imap://" + m.User + "@" + m.Addr + "/" + m.Folder
}

// Source is the gateway source for mail from this mailbox.
func (m *Mailbox) Source() string { return m.Proto + ":" + m.Name }

// FromConfig turns a validated [[poll]] entry into a Mailbox.
func FromConfig(p config.Poll) (*Mailbox, error) {
	m, err := parseURL(p.URL)
	if err != nil {
		return nil, fmt.Errorf("poll %s: %w", p.Name, err)
	}
	m.Name = p.Name
	m.Password, m.TokenFile, m.Token = p.Password, p.TokenFile, p.Token
	m.Schedule, m.Idle, m.InsecureSkipVerify = p.Schedule, p.Idle, p.InsecureSkipVerify
	m.After = p.After
	if to, ok := strings.CutPrefix(p.After, "move:"); ok {
		m.After, m.MoveTo = "move", to
	}
	switch {
	case m.After != "delete" && m.After != "flag" && m.After != "move":
		return nil, fmt.Errorf("poll %s: after = %q: want \"delete\", \"flag\" or \"move:MAILBOX\"", p.Name, p.After)
	case m.Proto == "pop3" && m.After != "delete":
		return nil, fmt.Errorf("poll %s: after = %q: POP3 can only delete", p.Name, p.After)
	case m.After == "move" && strings.EqualFold(m.MoveTo, m.Folder):
		return nil, fmt.Errorf("poll %s: after = %q moves mail into the mailbox it is polled from", p.Name, p.After)
	case m.Idle && m.Proto != "imap":
		return nil, fmt.Errorf("poll %s: idle needs an IMAP mailbox", p.Name)
	}
	return m, nil
}

// parseURL reads imap[s]://, imap+starttls://, pop3[s]:// and
// pop3+starttls:// URLs.
func parseURL(s string) (*Mailbox, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	m := &Mailbox{}
	var port string
	switch u.Scheme {
	case "imap":
		m.Proto, m.Security, port = "imap", "none", "143"
	case "imap+starttls":
		m.Proto, m.Security, port = "imap", "starttls", "143"
	case "imaps":
		m.Proto, m.Security, port = "imap", "tls", "993"
	case "pop3":
		m.Proto, m.Security, port = "pop3", "none", "110"
	case "pop3+starttls":
		m.Proto, m.Security, port = "pop3", "starttls", "110"
	case "pop3s":
		m.Proto, m.Security, port = "pop3", "tls", "995"
	default:
		return nil, fmt.Errorf("unknown scheme %q (want imap, imaps, imap+starttls, pop3, pop3s or pop3+starttls)", u.Scheme)
	}
	m.Host = u.Hostname()
	if m.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", s)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	m.Addr = net.JoinHostPort(strings.ToLower(m.Host), port)
	if u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("URL %q names no user", s)
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("URL must not contain a password (use password_file)")
	}
	m.User = u.User.Username()
	if m.Proto == "pop3" {
		// RFC 2384 §3: pop://user;auth=+APOP@host.
		if user, auth, ok := strings.Cut(m.User, ";"); ok {
			a, _ := strings.CutPrefix(strings.ToLower(auth), "auth=")
			switch a {
			case "+apop":
				m.APOP = true
			case "*", "user":
			default:
				return nil, fmt.Errorf("URL %q: unknown ;auth=%s (want +APOP or *)", s, a)
			}
			m.User = user
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("URL %q: a POP3 URL has no mailbox path", s)
		}
		return m, nil
	}
	m.Folder = strings.TrimPrefix(u.Path, "/")
	if m.Folder == "" || strings.EqualFold(m.Folder, "INBOX") {
		m.Folder = "INBOX"
	}
	return m, nil
}

// token returns the XOAUTH2 access token: TokenFile read now (tokens are
// refreshed by rewriting the file), else Token.
func (m *Mailbox) token() (string, error) {
	if m.TokenFile == "" {
		return m.Token, nil
	}
	b, err := os.ReadFile(m.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token_file %s is empty", m.TokenFile)
	}
	return t, nil
}

// useToken reports whether to log in with XOAUTH2.
func (m *Mailbox) useToken() bool { return m.TokenFile != "" || (m.Token != "" && m.Password == "") }
