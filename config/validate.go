package config

import (
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the key path, as "smtp.read_timeout" or "poll[0].url"
	// (entries of [[poll]] counted from 0); "" for the file as a whole.
	Key string
	// Message says what is wrong.
	Message string
	// Hint, when not "", says how to fix it.
	Hint string
}

func (p Problem) String() string {
	s := p.Message
	if p.Key != "" {
		s = p.Key + ": " + s
	}
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// ValidationError lists every problem found in a configuration: those
// found decoding the file (in the order of Config's fields, unknown keys
// last in each table), then unreadable secret files, then invalid values.
// It does not name the file; Load's caller may prefix it.
type ValidationError struct {
	Problems []Problem
}

// Error returns one problem per line, each as "key: message (hint)".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (e *ValidationError) add(key, hint, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Key: key, Message: fmt.Sprintf(format, args...), Hint: hint})
}

// Validate checks every value of c and returns a *ValidationError with
// all the problems found, or nil. It does no I/O: secret files are read
// (and their absence reported) by Load and Parse, and a postgres DSN
// that comes from store.dsn_file must already be in Store.DSN.
func (c *Config) Validate() error {
	ve := &ValidationError{}
	c.validate(ve)
	if len(ve.Problems) > 0 {
		return ve
	}
	return nil
}

func (c *Config) validate(ve *ValidationError) {
	v := validator{ve}

	t := c.Tracker
	v.nonEmpty("tracker.name", t.Name)
	v.separator("tracker.subaddress_separator", t.SubaddressSeparator)
	v.address("tracker.address", t.Address, t.SubaddressSeparator)
	v.webURL("tracker.web_url", t.WebURL)
	v.nonEmpty("tracker.data_dir", t.DataDir)
	v.atLeast("tracker.shutdown_grace", int64(t.ShutdownGrace), 0)

	s := c.Store
	switch s.Driver {
	case "sqlite":
	case "postgres":
		if s.DSN == "" && s.DSNFile == "" {
			ve.add("store.dsn", `set dsn, or dsn_file for a DSN with a password, e.g. "postgres://trackerd@localhost/trackerd"`,
				"the postgres driver needs a dsn")
		}
	default:
		ve.add("store.driver", `one of "sqlite", "postgres"`, "unknown driver %q", s.Driver)
	}
	v.atLeast("store.max_open_conns", int64(s.MaxOpenConns), 0)
	v.atLeast("store.query_timeout", int64(s.QueryTimeout), 1)
	v.oneOf("store.sqlite_synchronous", s.SQLiteSynchronous, "full", "normal")

	m := c.SMTP
	v.listen("smtp.listen", m.Listen)
	v.atLeast("smtp.max_message_bytes", m.MaxMessageBytes, 1)
	v.atLeast("smtp.max_recipients", int64(m.MaxRecipients), 1)
	v.atLeast("smtp.read_timeout", int64(m.ReadTimeout), 1)
	v.atLeast("smtp.write_timeout", int64(m.WriteTimeout), 1)
	v.atLeast("smtp.max_line_length", int64(m.MaxLineLength), 1000)
	v.atLeast("smtp.max_connections", int64(m.MaxConnections), 1)
	v.atLeast("smtp.max_connections_per_ip", int64(m.MaxConnectionsPerIP), 1)
	v.atLeast("smtp.max_connections_per_ip_minute", int64(m.MaxConnectionsPerIPMinute), 1)
	if (m.TLSCert == "") != (m.TLSKey == "") {
		missing, set := "tls_key", "tls_cert"
		if m.TLSCert == "" {
			missing, set = set, missing
		}
		ve.add("smtp."+missing, "set both for STARTTLS, or neither", "must be set when %s is set", set)
	}

	seen := map[string]bool{}
	for i, p := range c.Poll {
		v.poll(fmt.Sprintf("poll[%d]", i), p, seen)
	}

	g := c.MailGW
	v.oneOf("mailgw.unknown_sender", g.UnknownSender, "create", "reject")
	v.oneOf("mailgw.keep_quoted_text", g.KeepQuotedText, "no", "yes", "new")
	v.oneOf("mailgw.leave_body_unchanged", g.LeaveBodyUnchanged, "no", "yes", "new")
	v.oneOf("mailgw.subject_prefix_parsing", g.SubjectPrefixParsing, "strict", "loose", "none")
	v.oneOf("mailgw.subject_suffix_parsing", g.SubjectSuffixParsing, "strict", "loose", "none")
	if _, _, err := ParseContentMatch(g.SubjectContentMatch); err != nil {
		ve.add("mailgw.subject_content_match",
			`one of "always", "never", "creation +N", "activity +N" with N a number and a unit s, m, h or d, e.g. "creation +7d"`,
			"%v", err)
	}
	v.oneOf("mailgw.trust", g.Trust, "any", "authenticated")
	for i, id := range g.TrustedAuthservIDs {
		if id == "" || strings.ContainsFunc(id, isSpace) {
			ve.add(fmt.Sprintf("mailgw.trusted_authserv_ids[%d]", i), "", "invalid authserv-id %q", id)
		}
	}
	v.atLeast("mailgw.max_new_issues_per_sender_hour", int64(g.MaxNewIssuesPerSenderHour), 0)
	if g.AuthservID != "" && strings.ContainsFunc(g.AuthservID, isSpace) {
		ve.add("mailgw.authserv_id", "a host name, or empty for the tracker's domain", "invalid authserv-id %q", g.AuthservID)
	}
	if g.DNSServer != "" {
		if _, _, err := net.SplitHostPort(g.DNSServer); err != nil {
			ve.add("mailgw.dns_server", `host:port, e.g. "127.0.0.1:53", or empty for the system's resolver`, "%v", err)
		}
	}
	v.atLeast("mailgw.loop_max_mails", int64(g.LoopMaxMails), 1)
	if time.Duration(g.LoopWindow) < time.Second {
		ve.add("mailgw.loop_window", `a duration such as "10m"`, "must be at least 1s")
	}

	n := c.Nosy
	v.oneOf("nosy.add_author", n.AddAuthor, "yes", "new", "no")
	v.oneOf("nosy.add_recipients", n.AddRecipients, "yes", "new", "no")
	v.oneOf("nosy.messages_to_author", n.MessagesToAuthor, "yes", "no", "new", "nosy")
	v.atLeast("nosy.max_attachment_bytes", n.MaxAttachmentBytes, 0)

	o := c.Outgoing
	if o.Relay != "" {
		v.url("outgoing.relay", o.Relay, false, "smtp", "smtp+starttls", "smtps")
	} else if o.Username != "" || o.PasswordFile != "" {
		ve.add("outgoing.relay", `set relay, or remove username and password_file`, "username and password_file need a relay")
	}
	if (o.Username == "") != (o.PasswordFile == "") {
		ve.add("outgoing.username", "set both username and password_file for SMTP AUTH, or neither", "username and password_file go together")
	}
	if set := btoi(o.DKIMDomain != "") + btoi(o.DKIMSelector != "") + btoi(o.DKIMKeyFile != ""); set != 0 && set != 3 {
		ve.add("outgoing.dkim_key_file", "set all of dkim_domain, dkim_selector and dkim_key_file, or none", "incomplete DKIM settings")
	}
	v.atLeast("outgoing.max_attempts", int64(o.MaxAttempts), 1)
	v.atLeast("outgoing.connections", int64(o.Connections), 1)
	if o.Connections > 100 {
		ve.add("outgoing.connections", "at most 100", "%d connections is more than a relay will accept", o.Connections)
	}
	v.atLeast("outgoing.timeout", int64(o.Timeout), 1)
	if time.Duration(o.ClaimLease) < time.Second {
		ve.add("outgoing.claim_lease", `for example "1m"`, "must be at least 1s")
	}
	v.atLeast("outgoing.bounce_limit", int64(o.BounceLimit), 0)

	sc := c.Schema
	v.names("schema.statuses", sc.Statuses, true)
	v.member("schema.default_status", sc.DefaultStatus, "statuses", sc.Statuses)
	v.member("schema.reopen_status", sc.ReopenStatus, "statuses", sc.Statuses)
	v.names("schema.closed_statuses", sc.ClosedStatuses, true)
	for i, st := range sc.ClosedStatuses {
		v.member(fmt.Sprintf("schema.closed_statuses[%d]", i), st, "statuses", sc.Statuses)
		if st == sc.ReopenStatus {
			ve.add("schema.reopen_status", "", "%q is one of closed_statuses", st)
		}
	}
	v.names("schema.priorities", sc.Priorities, true)
	v.member("schema.default_priority", sc.DefaultPriority, "priorities", sc.Priorities)
	v.names("schema.keywords", sc.Keywords, false)

	v.listen("web.listen", c.Web.Listen)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
}

// validator holds the checks shared by several keys.
type validator struct{ ve *ValidationError }

func (v validator) nonEmpty(key, s string) {
	if s == "" {
		v.ve.add(key, "", "must not be empty")
	}
}

func (v validator) atLeast(key string, n, lo int64) {
	if n < lo {
		if lo == 1 {
			v.ve.add(key, "", "must be positive")
		} else {
			v.ve.add(key, "", "must be at least %d", lo)
		}
	}
}

func (v validator) oneOf(key, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.ve.add(key, "one of "+quoteList(allowed), "invalid value %q", s)
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (v validator) separator(key, s string) {
	if len(s) != 1 || !strings.Contains("+-=_.~#%&!$*/?^{|}`'", s) {
		v.ve.add(key, `one punctuation character allowed in an address's local part, usually "+" or "-"`, "invalid separator %q", s)
	}
}

func (v validator) address(key, s, sep string) {
	a, err := mail.ParseAddress(s)
	switch {
	case err != nil:
		v.ve.add(key, `a bare address such as "issues@example.org"`, "invalid address %q: %v", s, err)
	case a.Name != "" || a.Address != s:
		v.ve.add(key, "give the bare address; the display name is tracker.name", "invalid address %q", s)
	case sep != "" && strings.Contains(a.Address[:strings.LastIndexByte(a.Address, '@')], sep):
		v.ve.add(key, "choose another subaddress_separator or address", "the local part of %q contains the subaddress separator %q", s, sep)
	}
}

func (v validator) webURL(key, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.ve.add(key, `an absolute http or https URL such as "https://issues.example.org/"`, "invalid URL %q", s)
	case !strings.HasSuffix(u.Path, "/"):
		v.ve.add(key, fmt.Sprintf("write %q", s+"/"), "must end with /")
	}
}

func (v validator) listen(key, s string) {
	if s == "" {
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = fmt.Errorf("port out of range")
		}
	}
	if err != nil {
		v.ve.add(key, `host:port such as "127.0.0.1:2525" or ":2525", or "" to disable`, "invalid listen address %q", s)
	}
}

// url checks a URL with one of schemes and a host; wantUser requires a
// user name in it. A password in it is always a problem. It returns the
// parsed URL, problems or not, or nil if s does not parse.
func (v validator) url(key, s string, wantUser bool, schemes ...string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		v.ve.add(key, "", "invalid URL %q", redactURL(s))
		return nil
	}
	if !slices.Contains(schemes, u.Scheme) {
		v.ve.add(key, "scheme one of "+quoteList(schemes), "unknown URL scheme %q", u.Scheme)
	}
	if u.Host == "" {
		v.ve.add(key, "", "URL %q has no host", redactURL(s))
	}
	if _, set := u.User.Password(); set {
		v.ve.add(key, "put the password in password_file", "URL must not contain a password")
	} else if u.User != nil && !wantUser {
		v.ve.add(key, "use username and password_file", "URL must not contain a user")
	}
	if wantUser && u.User.Username() == "" {
		v.ve.add(key, fmt.Sprintf("write %s://USER@%s%s", u.Scheme, u.Host, u.Path), "URL must name the user")
	}
	return u
}

func (v validator) poll(key string, p Poll, seen map[string]bool) {
	switch {
	case !isPollName(p.Name):
		v.ve.add(key+".name", "letters, digits, '.', '_' and '-'", "invalid mailbox name %q", p.Name)
	case seen[p.Name]:
		v.ve.add(key+".name", "", "mailbox name %q is used twice", p.Name)
	}
	seen[p.Name] = true

	imap := true
	if u := v.url(key+".url", p.URL, true, "imap", "imaps", "imap+starttls", "pop3", "pop3s", "pop3+starttls"); u != nil {
		imap = !strings.HasPrefix(u.Scheme, "pop3")
	}
	if (p.PasswordFile == "") == (p.TokenFile == "") {
		v.ve.add(key+".password_file", "set password_file, or token_file for XOAUTH2", "exactly one of password_file and token_file is needed")
	}
	if p.Idle && !imap {
		v.ve.add(key+".idle", "IDLE is IMAP only; use schedule for POP3", "idle needs an imap URL")
	}
	if !p.Idle {
		if _, err := cron.ParseStandard(p.Schedule); err != nil {
			v.ve.add(key+".schedule", `a cron spec "minute hour day month weekday" such as "*/5 * * * *", or "@every 5m"`,
				"invalid schedule %q: %v", p.Schedule, err)
		}
	}
	switch {
	case p.After == "delete":
	case !imap:
		v.ve.add(key+".after", "POP3 can only delete", "invalid value %q for a pop3 URL", p.After)
	case p.After == "flag", strings.HasPrefix(p.After, "move:") && len(p.After) > len("move:"):
	default:
		v.ve.add(key+".after", `"delete", "flag" or "move:MAILBOX"`, "invalid value %q", p.After)
	}
}

// names checks a list of schema names: valid names, no duplicates
// (ignoring case, as mail commands match case-insensitively), and not
// empty when required.
func (v validator) names(key string, l []string, required bool) {
	if required && len(l) == 0 {
		v.ve.add(key, "", "must not be empty")
	}
	seen := map[string]bool{}
	for i, s := range l {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case s == "" || strings.ContainsFunc(s, isSpace) || strings.ContainsAny(s, "[]=;,") || strings.ContainsAny(s[:1], "+-"):
			v.ve.add(k, "names may not contain spaces or []=;, nor start with + or -", "invalid name %q", s)
		case seen[strings.ToLower(s)]:
			v.ve.add(k, "", "%q is listed twice", s)
		}
		seen[strings.ToLower(s)] = true
	}
}

func (v validator) member(key, s, listKey string, l []string) {
	for _, x := range l {
		if s == x {
			return
		}
	}
	v.ve.add(key, fmt.Sprintf("one of schema.%s: %s", listKey, quoteList(l)), "%q is not in %s", s, listKey)
}

func isPollName(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ParseContentMatch parses mailgw.subject_content_match: "always",
// "never", "creation +N" or "activity +N", N a positive integer with a
// unit s, m, h or d ("creation +7d"; spaces around "+" are allowed).
// mode is "always", "never", "creation" or "activity"; window is the
// +N, 0 for always and never.
func ParseContentMatch(s string) (mode string, window time.Duration, err error) {
	f := strings.Fields(s)
	if len(f) == 1 && (f[0] == "always" || f[0] == "never") {
		return f[0], 0, nil
	}
	if len(f) < 2 || (f[0] != "creation" && f[0] != "activity") {
		return "", 0, fmt.Errorf("invalid subject match %q", s)
	}
	w, ok := strings.CutPrefix(strings.Join(f[1:], ""), "+")
	if !ok || len(w) < 2 {
		return "", 0, fmt.Errorf("invalid subject match %q: want %s +N", s, f[0])
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	unit, ok := units[w[len(w)-1]]
	digits := w[:len(w)-1]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || digits[0] < '0' || digits[0] > '9' || n <= 0 || n > math.MaxInt64/int64(unit) {
		return "", 0, fmt.Errorf("invalid subject match %q: bad window %q", s, "+"+w)
	}
	return f[0], time.Duration(n) * unit, nil
}
