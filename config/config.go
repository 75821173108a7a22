// Package config holds trackerd's one configuration struct, its defaults,
// loading from TOML and validation.
//
// Load = Default → the file → secrets read from their *_file keys →
// Validate. Every problem found on the way is reported at once, each with
// the key path it concerns and, where one helps, a hint.
package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// Config is trackerd's whole configuration. The zero value is not useful:
// start from Default, Load or Parse. Fields tagged toml:"-" hold secrets
// read from files by Load and Parse; they are never printed.
type Config struct {
	Tracker  Tracker  `toml:"tracker"`
	Store    Store    `toml:"store"`
	SMTP     SMTP     `toml:"smtp"`
	Poll     []Poll   `toml:"poll"`
	MailGW   MailGW   `toml:"mailgw"`
	Nosy     Nosy     `toml:"nosy"`
	Outgoing Outgoing `toml:"outgoing"`
	Schema   Schema   `toml:"schema"`
	Web      Web      `toml:"web"`
	Log      Log      `toml:"log"`
}

// Tracker is the [tracker] table: who the tracker is and where it keeps
// its data.
type Tracker struct {
	// Name is the tracker's display name, used in notification From
	// headers ("Author (Name)") and page titles. Default "trackerd".
	Name string `toml:"name"`
	// Address is the tracker's bare mail address; mail to it opens
	// issues and sub-addresses (local+ID@domain) derive from it. Default
	// "tracker@localhost".
	Address string `toml:"address"`
	// WebURL is the absolute http(s) URL of the web view, ending in "/";
	// links in notifications are built from it. Default
	// "http://127.0.0.1:8080/".
	WebURL string `toml:"web_url"`
	// SubaddressSeparator is the one character between the local part
	// and the issue ID in sub-addresses (tracker+42@...). Default "+".
	SubaddressSeparator string `toml:"subaddress_separator"`
	// DataDir holds the SQLite database and the outgoing mail spool. A
	// relative path is relative to the process's working directory (not
	// to the config file). Default "./trackerd-data".
	DataDir string `toml:"data_dir"`
	// ShutdownGrace is how long serve waits for in-flight work after the
	// first signal before it exits anyway; 0 exits at once. Default 30s.
	ShutdownGrace Duration `toml:"shutdown_grace"`
}

// Store is the [store] table: the database.
type Store struct {
	// Driver is "sqlite" (embedded) or "postgres". Default "sqlite".
	Driver string `toml:"driver"`
	// DSN names the database. sqlite: a file path, "" meaning
	// DataDir/trackerd.db; postgres: a URL (postgres://...) or a
	// key=value DSN, required. Use StoreDSN for the effective value.
	// Default "".
	DSN string `toml:"dsn"`
	// DSNFile, when set, is a file whose content (trailing newline
	// trimmed) is the DSN, so a PostgreSQL password need not sit in the
	// config. Exclusive with DSN. Default "".
	DSNFile string `toml:"dsn_file"`
	// MaxOpenConns caps open database connections; 0 lets the store pick
	// a driver-appropriate value. Default 0.
	MaxOpenConns int `toml:"max_open_conns"`
	// QueryTimeout bounds each database query. Default 30s.
	QueryTimeout Duration `toml:"query_timeout"`
	// SQLiteSynchronous is SQLite's PRAGMA synchronous: "full" or
	// "normal". NORMAL in WAL mode may lose the last commits on power
	// loss, which breaks the guarantee that acknowledged mail is stored;
	// use it only when that is acceptable. Default "full".
	SQLiteSynchronous string `toml:"sqlite_synchronous"`
}

// SMTP is the [smtp] table: the inbound SMTP/LMTP listener.
type SMTP struct {
	// Listen is the host:port to listen on; "" disables the listener.
	// Default "127.0.0.1:2525".
	Listen string `toml:"listen"`
	// LMTP makes the listener speak LMTP instead of SMTP. Default false.
	LMTP bool `toml:"lmtp"`
	// MaxMessageBytes is the largest message accepted, in bytes.
	// Default 26214400 (25 MiB).
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxRecipients is the most RCPT TO accepted per message. Default 50.
	MaxRecipients int `toml:"max_recipients"`
	// ReadTimeout bounds each read from a client. Default 60s.
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds each write to a client. Default 60s.
	WriteTimeout Duration `toml:"write_timeout"`
	// TLSCert is the PEM certificate chain file; STARTTLS is offered
	// when both TLSCert and TLSKey are set. A relative path is relative
	// to the config file. Default "".
	TLSCert string `toml:"tls_cert"`
	// TLSKey is the PEM private key file for TLSCert. Default "".
	TLSKey string `toml:"tls_key"`
	// MaxLineLength is the longest line accepted, in bytes, counting
	// the CRLF, in commands and in the message; a longer line ends the
	// session (RFC 5321 §4.5.3.1.6 sets 1000, doubled for tolerance).
	// Default 2000.
	MaxLineLength int `toml:"max_line_length"`
	// MaxConnections is the most client connections served at once; more
	// are answered 421 and closed. Default 100.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP is the most connections from one IP address at
	// once; more are answered 421 and closed. An MX or MTA in front of
	// trackerd delivers from one address: keep this at least its
	// concurrency (Postfix's default destination concurrency is 20).
	// Default 20.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxConnectionsPerIPMinute is the most new connections one IP
	// address may open in a minute (a sliding window); more are
	// answered 421 and closed. Default 120.
	MaxConnectionsPerIPMinute int `toml:"max_connections_per_ip_minute"`
}

// Poll is one [[poll]] entry: a mailbox polled over IMAP or POP3. Keys a
// [[poll]] entry leaves out take the values of defaultPoll.
type Poll struct {
	// Name identifies the mailbox in logs and in "trackerd poll NAME":
	// letters, digits, '.', '_' and '-', unique. Required.
	Name string `toml:"name"`
	// URL is scheme://user@host[:port]/mailbox with scheme one of imap,
	// imaps, imap+starttls, pop3, pop3s, pop3+starttls. The user is
	// required; a password is not allowed here (use PasswordFile). An
	// IMAP mailbox defaults to INBOX. Required.
	URL string `toml:"url"`
	// PasswordFile is the file holding the mailbox password. Exactly one
	// of PasswordFile and TokenFile is required. Relative paths are
	// relative to the config file.
	PasswordFile string `toml:"password_file"`
	// Password is PasswordFile's content, trailing newline trimmed, read
	// by Load and Parse. Never printed.
	Password string `toml:"-"`
	// TokenFile is the file holding an OAuth2 access token for SASL
	// XOAUTH2, instead of a password. Such tokens expire: the poller
	// should re-read the file on each connection. Relative paths are
	// relative to the config file.
	TokenFile string `toml:"token_file"`
	// Token is TokenFile's content at load time, trailing newline
	// trimmed. Never printed.
	Token string `toml:"-"`
	// Schedule is a standard 5-field cron spec (robfig/cron
	// ParseStandard, so "@every 5m" works too) for when serve polls;
	// ignored when Idle. Default "*/5 * * * *".
	Schedule string `toml:"schedule"`
	// Idle keeps an IMAP connection open and waits with IMAP IDLE
	// instead of polling on Schedule. IMAP only. Default false.
	Idle bool `toml:"idle"`
	// After is what happens to a mail once it is stored: "delete",
	// "flag" (IMAP \Seen) or "move:MAILBOX" (IMAP). POP3 allows only
	// "delete". Default "delete".
	After string `toml:"after"`
	// InsecureSkipVerify skips TLS certificate verification. For tests
	// and self-signed servers only. Default false.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// MailGW is the [mailgw] table: how incoming mail is understood. The enum
// values are Roundup's.
type MailGW struct {
	// UnknownSender is "create" (new senders become users) or "reject"
	// (refused; unknown To/Cc people are not created either). Default
	// "create".
	UnknownSender string `toml:"unknown_sender"`
	// KeepRealFrom makes the author From even when Resent-From is
	// present. Default false.
	KeepRealFrom bool `toml:"keep_real_from"`
	// KeepQuotedText is "no", "yes" or "new" (only on a new issue): keep
	// quoted history in the stored text. Default "no".
	KeepQuotedText string `toml:"keep_quoted_text"`
	// LeaveBodyUnchanged is "no", "yes" or "new": "yes" keeps signatures
	// and quotes untouched. Default "no".
	LeaveBodyUnchanged string `toml:"leave_body_unchanged"`
	// IgnoreListMail refuses to file mail with Precedence: list or a
	// List-Id header. Default false.
	IgnoreListMail bool `toml:"ignore_list_mail"`
	// SubjectPrefixParsing is "strict", "loose" or "none": how the
	// [issueN] designator is looked for. Default "strict".
	SubjectPrefixParsing string `toml:"subject_prefix_parsing"`
	// SubjectSuffixParsing is "strict", "loose" or "none": how the
	// trailing [prop=value] suffix is handled. Default "strict".
	SubjectSuffixParsing string `toml:"subject_suffix_parsing"`
	// SubjectContentMatch is "always", "never", "creation +N" or
	// "activity +N" (N a number with unit s, m, h or d): whether and
	// within what window a subject without designator matches an
	// existing issue's title. See ParseContentMatch. Default "never".
	SubjectContentMatch string `toml:"subject_content_match"`
	// SubjectUpdatesTitle lets a reply's changed subject retitle the
	// issue. Default false.
	SubjectUpdatesTitle bool `toml:"subject_updates_title"`
	// BodyCommands enables /status, /assign, ... lines at the top of the
	// body. Default true.
	BodyCommands bool `toml:"body_commands"`
	// Trust is "any" or "authenticated" (only mail whose From passes
	// DMARC, or aligned DKIM/SPF, may change properties or run
	// commands). Default "any".
	Trust string `toml:"trust"`
	// TrustedAuthservIDs are the authserv-ids whose topmost
	// Authentication-Results header is believed for polled or piped
	// mail. Default empty.
	TrustedAuthservIDs []string `toml:"trusted_authserv_ids"`
	// MaxNewIssuesPerSenderHour caps the issues one sender may open per
	// hour; 0 = no limit. Default 20.
	MaxNewIssuesPerSenderHour int `toml:"max_new_issues_per_sender_hour"`
	// AuthservID is the authserv-id of the Authentication-Results header
	// the SMTP listener adds to the mail it checks (RFC 8601). Default
	// "" = the tracker address's domain.
	AuthservID string `toml:"authserv_id"`
	// DNSServer is the host:port of the DNS server asked for SPF, DKIM
	// and DMARC records; "" uses the system's resolver. Default "".
	DNSServer string `toml:"dns_server"`
	// LoopMaxMails is the loop breaker: more than this many mails from
	// one sender to one issue within LoopWindow are quarantined,
	// whatever their headers say. Default 10.
	LoopMaxMails int `toml:"loop_max_mails"`
	// LoopWindow is the loop breaker's window. Default 10m.
	LoopWindow Duration `toml:"loop_window"`
}

// Nosy is the [nosy] table: who joins nosy lists and who gets mail.
type Nosy struct {
	// AddAuthor is "yes", "new" (only on a new issue) or "no": whether a
	// message's author joins the nosy list. Default "yes".
	AddAuthor string `toml:"add_author"`
	// AddRecipients is "yes", "new" or "no": whether To/Cc people join.
	// Default "yes".
	AddRecipients string `toml:"add_recipients"`
	// MessagesToAuthor is "yes", "no", "new" or "nosy" (only when the
	// author is on the nosy list): whether authors get their own
	// message. Default "no".
	MessagesToAuthor string `toml:"messages_to_author"`
	// MaxAttachmentBytes is the largest file attached to a notification,
	// in bytes; larger files are linked. 0 links every file. Default
	// 1048576 (1 MiB).
	MaxAttachmentBytes int64 `toml:"max_attachment_bytes"`
}

// Outgoing is the [outgoing] table: how notifications are sent.
type Outgoing struct {
	// Relay is "smtp://host[:port]", "smtp+starttls://..." or
	// "smtps://..."; "" writes each mail as a file to OutgoingDir in
	// Maildir layout. Credentials go in Username and PasswordFile, not
	// in the URL. Default "".
	Relay string `toml:"relay"`
	// Username is the SMTP AUTH user; set together with PasswordFile.
	// Default "".
	Username string `toml:"username"`
	// PasswordFile is the file holding the SMTP AUTH password. Relative
	// paths are relative to the config file. Default "".
	PasswordFile string `toml:"password_file"`
	// Password is PasswordFile's content, trailing newline trimmed.
	// Never printed.
	Password string `toml:"-"`
	// DKIMDomain is the signing domain (d=). DKIMDomain, DKIMSelector
	// and DKIMKeyFile are set together to DKIM-sign notifications, or
	// all left "". Default "".
	DKIMDomain string `toml:"dkim_domain"`
	// DKIMSelector is the selector (s=). Default "".
	DKIMSelector string `toml:"dkim_selector"`
	// DKIMKeyFile is the PEM private key file. A relative path is
	// relative to the config file. Default "".
	DKIMKeyFile string `toml:"dkim_key_file"`
	// DKIMKey is DKIMKeyFile's content, unmodified. Never printed.
	DKIMKey []byte `toml:"-"`
	// MaxAttempts is how many times one notification is tried before it
	// is given up. Default 12.
	MaxAttempts int `toml:"max_attempts"`
	// Connections is how many SMTP connections to the relay (or spool
	// writers) the notifier uses at once; connections are reused for
	// many mails. Default 8.
	Connections int `toml:"connections"`
	// Timeout bounds connecting to the relay and each wait for its
	// answer, the answer to the end of a mail's data included. Default
	// "2m".
	Timeout Duration `toml:"timeout"`
	// ClaimLease is how long outbox rows a notifier has claimed stay
	// hidden from other notifiers; it is renewed while they are worked
	// on, so it only matters when a trackerd dies: its unsent rows are
	// sent by another (or the restarted one) once it ends. Default "1m".
	ClaimLease Duration `toml:"claim_lease"`
	// BounceLimit is how many hard bounces in a row (with no mail from
	// the address in between) mark an address as bouncing: it gets no
	// more notifications until mail from it comes in again. 0 never
	// marks. Default 3.
	BounceLimit int `toml:"bounce_limit"`
}

// Schema is the [schema] table: the values of an issue's properties.
// Names may not contain whitespace or any of []=;, and may not start
// with + or -, so that the subject and body grammars can carry them.
type Schema struct {
	// Statuses are the allowed statuses, in display order. Default
	// unread, deferred, chatting, need-eg, in-progress, testing,
	// done-cbb, resolved.
	Statuses []string `toml:"statuses"`
	// DefaultStatus is a new issue's status. Default "unread".
	DefaultStatus string `toml:"default_status"`
	// ReopenStatus is where a new message moves an issue whose status is
	// DefaultStatus or closed. Default "chatting".
	ReopenStatus string `toml:"reopen_status"`
	// ClosedStatuses are the statuses that count as closed (/close picks
	// the first). Default resolved, done-cbb.
	ClosedStatuses []string `toml:"closed_statuses"`
	// Priorities are the allowed priorities, most urgent first. Default
	// critical, urgent, bug, feature, wish.
	Priorities []string `toml:"priorities"`
	// DefaultPriority is a new issue's priority. Default "bug".
	DefaultPriority string `toml:"default_priority"`
	// Keywords are the allowed keywords; empty accepts and creates any.
	// Default empty.
	Keywords []string `toml:"keywords"`
}

// Web is the [web] table: the read-only web view.
type Web struct {
	// Listen is the host:port to listen on; "" disables the web view.
	// Default "127.0.0.1:8080".
	Listen string `toml:"listen"`
	// Public makes the web view show issues to anyone who can reach it.
	// Default true.
	Public bool `toml:"public"`
}

// Log is the [log] table.
type Log struct {
	// Level is "debug", "info", "warn" or "error". Default "info".
	Level string `toml:"level"`
	// Format is "text" or "json". Default "text".
	Format string `toml:"format"`
}

// Default returns the built-in configuration: a working demo tracker
// with data in ./trackerd-data, SQLite, SMTP on 127.0.0.1:2525, the web
// view on 127.0.0.1:8080, no relay (mail is written to
// ./trackerd-data/outgoing) and no mailboxes to poll. It is the one place
// defaults live (with defaultPoll for [[poll]] entries). Each call returns
// a new value the caller may modify.
func Default() *Config {
	return &Config{
		Tracker: Tracker{
			Name:                "trackerd",
			Address:             "tracker@localhost",
			WebURL:              "http://127.0.0.1:8080/",
			SubaddressSeparator: "+",
			DataDir:             "./trackerd-data",
			ShutdownGrace:       Duration(30 * time.Second),
		},
		Store: Store{
			Driver:            "sqlite",
			QueryTimeout:      Duration(30 * time.Second),
			SQLiteSynchronous: "full",
		},
		SMTP: SMTP{
			Listen:                    "127.0.0.1:2525",
			MaxMessageBytes:           26214400,
			MaxRecipients:             50,
			ReadTimeout:               Duration(60 * time.Second),
			WriteTimeout:              Duration(60 * time.Second),
			MaxLineLength:             2000,
			MaxConnections:            100,
			MaxConnectionsPerIP:       20,
			MaxConnectionsPerIPMinute: 120,
		},
		MailGW: MailGW{
			UnknownSender:             "create",
			KeepQuotedText:            "no",
			LeaveBodyUnchanged:        "no",
			SubjectPrefixParsing:      "strict",
			SubjectSuffixParsing:      "strict",
			SubjectContentMatch:       "never",
			BodyCommands:              true,
			Trust:                     "any",
			TrustedAuthservIDs:        []string{},
			MaxNewIssuesPerSenderHour: 20,
			LoopMaxMails:              10,
			LoopWindow:                Duration(10 * time.Minute),
		},
		Nosy: Nosy{
			AddAuthor:          "yes",
			AddRecipients:      "yes",
			MessagesToAuthor:   "no",
			MaxAttachmentBytes: 1048576,
		},
		Outgoing: Outgoing{
			MaxAttempts: 12,
			Connections: 8,
			Timeout:     Duration(2 * time.Minute),
			ClaimLease:  Duration(time.Minute),
			BounceLimit: 3,
		},
		Schema: Schema{
			Statuses:        []string{"unread", "deferred", "chatting", "need-eg", "in-progress", "testing", "done-cbb", "resolved"},
			DefaultStatus:   "unread",
			ReopenStatus:    "chatting",
			ClosedStatuses:  []string{"resolved", "done-cbb"},
			Priorities:      []string{"critical", "urgent", "bug", "feature", "wish"},
			DefaultPriority: "bug",
			Keywords:        []string{},
		},
		Web: Web{
			Listen: "127.0.0.1:8080",
			Public: true,
		},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
	}
}

// defaultPoll returns the values a [[poll]] entry starts from before its
// keys are decoded.
func defaultPoll() Poll {
	return Poll{
		Schedule: "*/5 * * * *",
		After:    "delete",
	}
}

// StoreDSN returns the effective DSN for Store.Driver: for sqlite with
// an empty DSN, DataDir/trackerd.db; otherwise Store.DSN (which Load has
// filled from DSNFile when that is set).
func (c *Config) StoreDSN() string {
	if c.Store.Driver == "sqlite" && c.Store.DSN == "" {
		return filepath.Join(c.Tracker.DataDir, "trackerd.db")
	}
	return c.Store.DSN
}

// SQLitePath returns the SQLite database file, or "" when the driver is
// not sqlite.
func (c *Config) SQLitePath() string {
	if c.Store.Driver != "sqlite" {
		return ""
	}
	return c.StoreDSN()
}

// OutgoingDir returns the Maildir that receives outgoing mail when no
// relay is set: DataDir/outgoing.
func (c *Config) OutgoingDir() string {
	return filepath.Join(c.Tracker.DataDir, "outgoing")
}

// Duration is a time.Duration written in TOML as a string in Go's
// duration syntax ("90s", "5m", "1h30m").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler with
// time.ParseDuration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler; the result is the
// shortest whole-unit form when there is one ("60s" → "1m").
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String formats d as MarshalText does.
func (d Duration) String() string {
	v := time.Duration(d)
	switch {
	case v == 0:
		return "0s"
	case v%time.Hour == 0:
		return fmt.Sprintf("%dh", v/time.Hour)
	case v%time.Minute == 0:
		return fmt.Sprintf("%dm", v/time.Minute)
	case v%time.Second == 0:
		return fmt.Sprintf("%ds", v/time.Second)
	}
	return v.String()
}
