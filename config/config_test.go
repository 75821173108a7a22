package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDefault pins the zero-config defaults of DESIGN §4.
func TestDefault(t *testing.T) {
	want := &Config{
		Tracker: Tracker{
			Name:                "trackerd",
			Address:             "tracker@localhost",
			WebURL:              "http://127.0.0.1:8080/",
			SubaddressSeparator: "+",
			DataDir:             "./trackerd-data",
			ShutdownGrace:       Duration(30 * time.Second),
		},
		Store: Store{Driver: "sqlite", QueryTimeout: Duration(30 * time.Second), SQLiteSynchronous: "full"},
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
		Nosy:     Nosy{AddAuthor: "yes", AddRecipients: "yes", MessagesToAuthor: "no", MaxAttachmentBytes: 1048576},
		Outgoing: Outgoing{MaxAttempts: 12, Connections: 8, Timeout: Duration(2 * time.Minute), ClaimLease: Duration(time.Minute), BounceLimit: 3},
		Schema: Schema{
			Statuses:        []string{"unread", "deferred", "chatting", "need-eg", "in-progress", "testing", "done-cbb", "resolved"},
			DefaultStatus:   "unread",
			ReopenStatus:    "chatting",
			ClosedStatuses:  []string{"resolved", "done-cbb"},
			Priorities:      []string{"critical", "urgent", "bug", "feature", "wish"},
			DefaultPriority: "bug",
			Keywords:        []string{},
		},
		Web: Web{Listen: "127.0.0.1:8080", Public: true},
		Log: Log{Level: "info", Format: "text"},
	}
	c := Default()
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
	if got, want := c.StoreDSN(), filepath.Join("trackerd-data", "trackerd.db"); got != want {
		t.Errorf("Default().StoreDSN() = %q, want %q", got, want)
	}
	if got, want := c.SQLitePath(), filepath.Join("trackerd-data", "trackerd.db"); got != want {
		t.Errorf("Default().SQLitePath() = %q, want %q", got, want)
	}
	if got, want := c.OutgoingDir(), filepath.Join("trackerd-data", "outgoing"); got != want {
		t.Errorf("Default().OutgoingDir() = %q, want %q", got, want)
	}
}

func TestStarterIsDefault(t *testing.T) {
	c, err := Parse(Starter(), "")
	if err != nil {
		t.Fatalf("Parse(Starter()) error:\n%v", err)
	}
	if diff := cmp.Diff(Default(), c); diff != "" {
		t.Errorf("Parse(Starter()) differs from Default() (-want +got):\n%s", diff)
	}
}

// TestStarterDocumentsEveryKey checks that the starter names every table
// and key of Config (the [[poll]] ones in its commented example), each
// after a comment.
func TestStarterDocumentsEveryKey(t *testing.T) {
	s := string(Starter())
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sect := ct.Field(i).Tag.Get("toml")
		st, prefix, header := ct.Field(i).Type, "", "["+sect+"]"
		if st.Kind() == reflect.Slice {
			st, prefix, header = st.Elem(), "# ", "# [["+sect+"]]"
		}
		if !strings.Contains(s, "\n"+header+"\n") {
			t.Errorf("Starter() lacks the table %s", header)
		}
		for j := range st.NumField() {
			key := st.Field(j).Tag.Get("toml")
			if key == "-" {
				continue
			}
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix+key+" = ")).MatchString(s) {
				t.Errorf("Starter() lacks the key %s.%s", sect, key)
			}
		}
	}
}

// TestDesignExample parses DESIGN §4's example file.
func TestDesignExample(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "design.toml"))
	if err != nil {
		t.Fatalf("Load(testdata/design.toml) error:\n%v", err)
	}
	want := Default()
	want.Tracker.Name = "Example Tracker"
	want.Tracker.Address = "issues@example.org"
	want.Tracker.WebURL = "https://issues.example.org/"
	want.Poll = []Poll{{
		Name:         "support",
		URL:          "imaps://tracker@imap.example.org/INBOX",
		PasswordFile: filepath.Join("testdata", "imap.pass"),
		Password:     "imap-secret",
		Schedule:     "*/5 * * * *",
		After:        "delete",
	}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Load(testdata/design.toml) mismatch (-want +got):\n%s", diff)
	}
}

// secretDir returns a directory with the files the bad-config snippets
// name: "pw" (a password), "empty" (an empty file), "key.pem".
func secretDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"pw":      []byte("s3cret\n"),
		"empty":   nil,
		"key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodPoll = `
[[poll]]
name = "support"
url = "imaps://tracker@imap.example.org/INBOX"
password_file = "pw"
`

// TestBadConfigs asserts the error text of each broken config.
func TestBadConfigs(t *testing.T) {
	dir := secretDir(t)
	tests := []struct {
		name, toml, want string
	}{
		// Decoding.
		{"syntax error", "[smtp\n", "TOML syntax error on line 2: expected '.' or ']' to end table name"},
		{"unknown key", "[smtp]\nlistne = \"x\"", `smtp.listne: unknown key (did you mean "listen"?)`},
		{"unknown table", "[smpt]\nlisten = \"x\"", `smpt: unknown key (did you mean "smtp"?)`},
		{"unknown key no hint", "[web]\ncolour = \"red\"", "web.colour: unknown key"},
		{"secret inline", "[outgoing]\npassword = \"x\"", `outgoing.password: unknown key (secrets are read from files: use "password_file")`},
		{"unknown poll key", goodPoll + "shedule = \"@hourly\"", `poll[0].shedule: unknown key (did you mean "schedule"?)`},
		{"bad duration", "[smtp]\nread_timeout = \"5 parsecs\"", `smtp.read_timeout: invalid duration "5 parsecs" (use Go duration syntax`},
		{"duration without unit", "[store]\nquery_timeout = 30", `store.query_timeout: invalid duration "30"`},
		{"string for integer", "[smtp]\nmax_recipients = \"50\"", "smtp.max_recipients: must be an integer, not a string"},
		{"string for boolean", "[smtp]\nlmtp = \"yes\"", "smtp.lmtp: must be a boolean, not a string"},
		{"string for array", "[schema]\nkeywords = \"a\"", "schema.keywords: must be an array of strings, not a string"},
		{"table not a table", "tracker = 5", "tracker: must be a table, not an integer"},
		{"poll entry not a table", "poll = [1]", "poll[0]: must be a table, not an integer"},
		{"poll not an array", "[poll]\nname = \"x\"", "poll: must be an array of tables"},

		// Files.
		{"missing secret file", strings.Replace(goodPoll, `"pw"`, `"nope"`, 1), `poll[0].password_file: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`},
		{"empty secret", "[outgoing]\nrelay = \"smtp://mx.example.org:25\"\nusername = \"u\"\npassword_file = \"empty\"", `outgoing.password_file: file "` + filepath.Join(dir, "empty") + `" is empty`},
		{"missing dsn file", "[store]\ndsn_file = \"/nonexistent/dsn\"", `store.dsn_file: cannot read "/nonexistent/dsn"`},
		{"dsn and dsn_file", "[store]\ndsn = \"x\"\ndsn_file = \"pw\"", "store.dsn_file: dsn and dsn_file are both set"},
		{"dkim key not a key", "[outgoing]\ndkim_domain = \"example.org\"\ndkim_selector = \"s\"\ndkim_key_file = \"pw\"", "outgoing.dkim_key_file: no private key in"},

		// [tracker]
		{"bad address", "[tracker]\naddress = \"not an address\"", `tracker.address: invalid address "not an address"`},
		{"address without domain", "[tracker]\naddress = \"tracker\"", `tracker.address: invalid address "tracker"`},
		{"address with name", "[tracker]\naddress = \"Tracker <t@example.org>\"", "give the bare address"},
		{"address with separator", "[tracker]\naddress = \"my+tracker@example.org\"", "contains the subaddress separator"},
		{"separator @", "[tracker]\nsubaddress_separator = \"@\"", `tracker.subaddress_separator: invalid separator "@"`},
		{"separator long", "[tracker]\nsubaddress_separator = \"++\"", `tracker.subaddress_separator: invalid separator "++"`},
		{"web_url relative", "[tracker]\nweb_url = \"issues.example.org/\"", `tracker.web_url: invalid URL "issues.example.org/"`},
		{"web_url ftp", "[tracker]\nweb_url = \"ftp://example.org/\"", `tracker.web_url: invalid URL`},
		{"web_url no slash", "[tracker]\nweb_url = \"https://example.org/issues\"", `tracker.web_url: must end with / (write "https://example.org/issues/")`},
		{"negative grace", "[tracker]\nshutdown_grace = \"-1s\"", "tracker.shutdown_grace: must be at least 0"},

		// [store]
		{"unknown driver", "[store]\ndriver = \"mysql\"", `store.driver: unknown driver "mysql" (one of "sqlite", "postgres")`},
		{"postgres without dsn", "[store]\ndriver = \"postgres\"", "store.dsn: the postgres driver needs a dsn"},
		{"bad synchronous", "[store]\nsqlite_synchronous = \"off\"", `store.sqlite_synchronous: invalid value "off" (one of "full", "normal")`},
		{"zero query timeout", "[store]\nquery_timeout = \"0s\"", "store.query_timeout: must be positive"},

		// [smtp]
		{"listen without port", "[smtp]\nlisten = \"127.0.0.1\"", `smtp.listen: invalid listen address "127.0.0.1"`},
		{"listen bad port", "[smtp]\nlisten = \":99999\"", `smtp.listen: invalid listen address ":99999"`},
		{"tls_cert without tls_key", "[smtp]\ntls_cert = \"cert.pem\"", "smtp.tls_key: must be set when tls_cert is set"},
		{"tls_key without tls_cert", "[smtp]\ntls_key = \"key.pem\"", "smtp.tls_cert: must be set when tls_key is set"},
		{"zero max_message_bytes", "[smtp]\nmax_message_bytes = 0", "smtp.max_message_bytes: must be positive"},
		{"negative timeout", "[smtp]\nwrite_timeout = \"-5s\"", "smtp.write_timeout: must be positive"},

		// [[poll]]
		{"bad poll scheme", strings.Replace(goodPoll, "imaps://", "https://", 1), `poll[0].url: unknown URL scheme "https" (scheme one of "imap", "imaps", "imap+starttls", "pop3", "pop3s", "pop3+starttls")`},
		{"poll url password", strings.Replace(goodPoll, "tracker@", "tracker:hunter2@", 1), "poll[0].url: URL must not contain a password (put the password in password_file)"},
		{"poll url without user", strings.Replace(goodPoll, "tracker@", "", 1), "poll[0].url: URL must name the user (write imaps://USER@imap.example.org/INBOX)"},
		{"poll url without host", strings.Replace(goodPoll, "tracker@imap.example.org", "", 1), "poll[0].url: URL \"imaps:///INBOX\" has no host"},
		{"poll without name", strings.Replace(goodPoll, `name = "support"`, "", 1), `poll[0].name: invalid mailbox name ""`},
		{"poll bad name", strings.Replace(goodPoll, `"support"`, `"imaps://x"`, 1), `poll[0].name: invalid mailbox name "imaps://x"`},
		{"poll duplicate name", goodPoll + goodPoll, `poll[1].name: mailbox name "support" is used twice`},
		{"poll without credentials", strings.Replace(goodPoll, `password_file = "pw"`, "", 1), "poll[0].password_file: exactly one of password_file and token_file is needed"},
		{"poll both credentials", goodPoll + `token_file = "pw"`, "poll[0].password_file: exactly one of password_file and token_file is needed"},
		{"bad cron schedule", goodPoll + `schedule = "every 5 minutes"`, `poll[0].schedule: invalid schedule "every 5 minutes"`},
		{"cron with seconds", goodPoll + `schedule = "0 */5 * * * *"`, `poll[0].schedule: invalid schedule "0 */5 * * * *"`},
		{"idle on pop3", strings.Replace(goodPoll, "imaps://", "pop3s://", 1) + "idle = true", "poll[0].idle: idle needs an imap URL"},
		{"flag on pop3", strings.Replace(goodPoll, "imaps://", "pop3://", 1) + `after = "flag"`, `poll[0].after: invalid value "flag" for a pop3 URL (POP3 can only delete)`},
		{"bad after", goodPoll + `after = "archive"`, `poll[0].after: invalid value "archive" ("delete", "flag" or "move:MAILBOX")`},
		{"move without mailbox", goodPoll + `after = "move:"`, `poll[0].after: invalid value "move:"`},

		// [mailgw]
		{"bad unknown_sender", "[mailgw]\nunknown_sender = \"ignore\"", `mailgw.unknown_sender: invalid value "ignore" (one of "create", "reject")`},
		{"bad keep_quoted_text", "[mailgw]\nkeep_quoted_text = \"true\"", `mailgw.keep_quoted_text: invalid value "true" (one of "no", "yes", "new")`},
		{"bad leave_body_unchanged", "[mailgw]\nleave_body_unchanged = \"maybe\"", `mailgw.leave_body_unchanged: invalid value "maybe"`},
		{"bad prefix parsing", "[mailgw]\nsubject_prefix_parsing = \"lenient\"", `mailgw.subject_prefix_parsing: invalid value "lenient" (one of "strict", "loose", "none")`},
		{"bad suffix parsing", "[mailgw]\nsubject_suffix_parsing = \"\"", `mailgw.subject_suffix_parsing: invalid value ""`},
		{"bad content match", "[mailgw]\nsubject_content_match = \"creation 7d\"", `mailgw.subject_content_match: invalid subject match "creation 7d"`},
		{"bad content match unit", "[mailgw]\nsubject_content_match = \"activity +2w\"", `mailgw.subject_content_match: invalid subject match "activity +2w": bad window "+2w"`},
		{"bad trust", "[mailgw]\ntrust = \"dmarc\"", `mailgw.trust: invalid value "dmarc" (one of "any", "authenticated")`},
		{"bad authserv-id", "[mailgw]\ntrusted_authserv_ids = [\"mx example\"]", `mailgw.trusted_authserv_ids[0]: invalid authserv-id "mx example"`},
		{"negative rate limit", "[mailgw]\nmax_new_issues_per_sender_hour = -1", "mailgw.max_new_issues_per_sender_hour: must be at least 0"},
		{"bad own authserv-id", "[mailgw]\nauthserv_id = \"tracker example\"", `mailgw.authserv_id: invalid authserv-id "tracker example"`},
		{"dns server without port", "[mailgw]\ndns_server = \"127.0.0.1\"", "mailgw.dns_server: address 127.0.0.1: missing port in address"},
		{"zero loop breaker", "[mailgw]\nloop_max_mails = 0", "mailgw.loop_max_mails: must be positive"},
		{"short loop window", "[mailgw]\nloop_window = \"10ms\"", "mailgw.loop_window: must be at least 1s"},
		{"zero connection rate", "[smtp]\nmax_connections_per_ip_minute = 0", "smtp.max_connections_per_ip_minute: must be positive"},

		// [nosy]
		{"bad add_author", "[nosy]\nadd_author = \"always\"", `nosy.add_author: invalid value "always" (one of "yes", "new", "no")`},
		{"bad add_recipients", "[nosy]\nadd_recipients = \"Yes\"", `nosy.add_recipients: invalid value "Yes"`},
		{"bad messages_to_author", "[nosy]\nmessages_to_author = \"all\"", `nosy.messages_to_author: invalid value "all" (one of "yes", "no", "new", "nosy")`},
		{"negative attachment size", "[nosy]\nmax_attachment_bytes = -1", "nosy.max_attachment_bytes: must be at least 0"},

		// [outgoing]
		{"bad relay scheme", "[outgoing]\nrelay = \"lmtp://localhost\"", `outgoing.relay: unknown URL scheme "lmtp" (scheme one of "smtp", "smtp+starttls", "smtps")`},
		{"relay with user", "[outgoing]\nrelay = \"smtps://me@mx.example.org\"", "outgoing.relay: URL must not contain a user (use username and password_file)"},
		{"username without password", "[outgoing]\nrelay = \"smtps://mx.example.org\"\nusername = \"me\"", "outgoing.username: username and password_file go together"},
		{"auth without relay", "[outgoing]\nusername = \"me\"\npassword_file = \"pw\"", "outgoing.relay: username and password_file need a relay"},
		{"partial dkim", "[outgoing]\ndkim_domain = \"example.org\"", "outgoing.dkim_key_file: incomplete DKIM settings"},
		{"zero attempts", "[outgoing]\nmax_attempts = 0", "outgoing.max_attempts: must be positive"},

		// [schema]
		{"default_status not in statuses", "[schema]\ndefault_status = \"new\"", `schema.default_status: "new" is not in statuses (one of schema.statuses: "unread"`},
		{"reopen_status not in statuses", "[schema]\nreopen_status = \"open\"", `schema.reopen_status: "open" is not in statuses`},
		{"reopen_status closed", "[schema]\nreopen_status = \"resolved\"", `schema.reopen_status: "resolved" is one of closed_statuses`},
		{"closed status unknown", "[schema]\nclosed_statuses = [\"closed\"]", `schema.closed_statuses[0]: "closed" is not in statuses`},
		{"duplicate status", "[schema]\nstatuses = [\"unread\", \"chatting\", \"resolved\", \"done-cbb\", \"Unread\"]", `schema.statuses[4]: "Unread" is listed twice`},
		{"empty priorities", "[schema]\npriorities = []", "schema.priorities: must not be empty"},
		{"default_priority not in priorities", "[schema]\ndefault_priority = \"normal\"", `schema.default_priority: "normal" is not in priorities`},
		{"keyword with space", "[schema]\nkeywords = [\"needs review\"]", `schema.keywords[0]: invalid name "needs review"`},
		{"keyword with sign", "[schema]\nkeywords = [\"-x\"]", `schema.keywords[0]: invalid name "-x"`},

		// [web], [log]
		{"bad web listen", "[web]\nlisten = \"localhost\"", `web.listen: invalid listen address "localhost"`},
		{"bad log level", "[log]\nlevel = \"verbose\"", `log.level: invalid value "verbose" (one of "debug", "info", "warn", "error")`},
		{"bad log format", "[log]\nformat = \"logfmt\"", `log.format: invalid value "logfmt" (one of "text", "json")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml), dir)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil; want error containing %q", tt.toml, c, tt.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("Parse(%q) error is %T, want *ValidationError", tt.toml, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error:\n%v\nwant it to contain:\n%s", tt.toml, err, tt.want)
			}
		})
	}
}

// TestAllProblemsAtOnce is the key test: one bad value does not hide the
// others, whether found while decoding or while validating.
func TestAllProblemsAtOnce(t *testing.T) {
	in := `
[smtp]
listne = "127.0.0.1:25"
read_timeout = "5 parsecs"
max_recipients = 10

[store]
driver = "mysql"
`
	c, err := Parse([]byte(in), "")
	if err == nil {
		t.Fatalf("Parse(%q) = %+v, nil; want an error", in, c)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse(%q) error is %T, want *ValidationError", in, err)
	}
	want := []Problem{
		{Key: "smtp.read_timeout", Message: `invalid duration "5 parsecs"`, Hint: `use Go duration syntax such as "90s", "5m" or "1h30m"`},
		{Key: "smtp.listne", Message: "unknown key", Hint: `did you mean "listen"?`},
		{Key: "store.driver", Message: `unknown driver "mysql"`, Hint: `one of "sqlite", "postgres"`},
	}
	if diff := cmp.Diff(want, ve.Problems); diff != "" {
		t.Errorf("Parse(%q) problems mismatch (-want +got):\n%s", in, diff)
	}
	wantText := `smtp.read_timeout: invalid duration "5 parsecs" (use Go duration syntax such as "90s", "5m" or "1h30m")
smtp.listne: unknown key (did you mean "listen"?)
store.driver: unknown driver "mysql" (one of "sqlite", "postgres")`
	if got := err.Error(); got != wantText {
		t.Errorf("Parse(%q).Error() =\n%s\nwant\n%s", in, got, wantText)
	}
}

func TestValidateHandBuilt(t *testing.T) {
	c := Default()
	c.Log.Level = "loud"
	c.Schema.DefaultPriority = "meh"
	err := c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("Validate() = %v, want a *ValidationError with 2 problems", err)
	}
}

// TestSecrets checks that secrets are read from files with the trailing
// newline trimmed, resolved against the base directory, and never printed.
func TestSecrets(t *testing.T) {
	dir := secretDir(t)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("imap.pass", "imap pass word\r\n")
	write("token", "ya29.token\n")
	write("smtp.pass", "smtp-pw\n\n")
	write("dsn", "postgres://trackerd:db-pw@db.example.org/trackerd?sslmode=verify-full\n")
	in := `
[store]
driver = "postgres"
dsn_file = "dsn"

[[poll]]
name = "a"
url = "imaps://tracker@imap.example.org/"
password_file = "imap.pass"

[[poll]]
name = "b"
url = "imaps://tracker@outlook.example.org/"
token_file = "token"

[outgoing]
relay = "smtp+starttls://mx.example.org:587"
username = "tracker"
password_file = "smtp.pass"
dkim_domain = "example.org"
dkim_selector = "s1"
dkim_key_file = "key.pem"
`
	c, err := Parse([]byte(in), dir)
	if err != nil {
		t.Fatalf("Parse error:\n%v", err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"Store.DSN", c.Store.DSN, "postgres://trackerd:db-pw@db.example.org/trackerd?sslmode=verify-full"},
		{"StoreDSN()", c.StoreDSN(), "postgres://trackerd:db-pw@db.example.org/trackerd?sslmode=verify-full"},
		{"SQLitePath()", c.SQLitePath(), ""},
		{"Poll[0].PasswordFile", c.Poll[0].PasswordFile, filepath.Join(dir, "imap.pass")},
		{"Poll[0].Password", c.Poll[0].Password, "imap pass word"},
		{"Poll[1].Token", c.Poll[1].Token, "ya29.token"},
		{"Outgoing.Password", c.Outgoing.Password, "smtp-pw"},
		{"Outgoing.DKIMKey", string(c.Outgoing.DKIMKey), string(key)},
	} {
		if tt.got != tt.want {
			t.Errorf("Parse: %s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}

	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatalf("WriteTOML: %v", err)
	}
	out := buf.String()
	for _, secret := range []string{"db-pw", "imap pass word", "ya29", "smtp-pw", "PRIVATE KEY"} {
		if strings.Contains(out, secret) {
			t.Errorf("WriteTOML output contains the secret %q:\n%s", secret, out)
		}
	}
	c2, err := Parse(buf.Bytes(), "")
	if err != nil {
		t.Fatalf("Parse(WriteTOML output) error:\n%v\noutput:\n%s", err, out)
	}
	if diff := cmp.Diff(c, c2); diff != "" {
		t.Errorf("Parse(WriteTOML output) differs (-want +got):\n%s", diff)
	}
}

func TestWriteTOMLRedactsDSN(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u:pw@h/db", "postgres://u:REDACTED@h/db"},
		{"postgresql://u:p%40ss@h:5432/db?sslmode=require", "postgresql://u:REDACTED@h:5432/db?sslmode=require"},
		{"postgres://u@h/db?password=pw&sslmode=disable", "postgres://u@h/db?password=REDACTED&sslmode=disable"},
		{"host=h user=u password=pw dbname=db", "host=h user=u password=REDACTED dbname=db"},
		{"host=h password = 'p w\\'x' dbname=db", "host=h password = REDACTED dbname=db"},
		{"postgres://u:p/w@h/db", "postgres://u:REDACTED@h/db"},
		{"host=h user=u dbname=db", "host=h user=u dbname=db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
	}
	for _, tt := range tests {
		c := Default()
		c.Store.Driver = "postgres"
		c.Store.DSN = tt.dsn
		var buf bytes.Buffer
		if err := c.WriteTOML(&buf); err != nil {
			t.Fatalf("WriteTOML with DSN %q: %v", tt.dsn, err)
		}
		c2, err := Parse(buf.Bytes(), "")
		if err != nil {
			t.Fatalf("Parse(WriteTOML output) with DSN %q: %v\n%s", tt.dsn, err, buf.String())
		}
		if got := c2.Store.DSN; got != tt.want {
			t.Errorf("WriteTOML with DSN %q wrote dsn %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

// TestRoundTrip checks WriteTOML → Parse on defaults and on a config
// with every table changed.
func TestRoundTrip(t *testing.T) {
	dir := secretDir(t)
	custom, err := Parse([]byte(`
[tracker]
name = "Example Tracker"
address = "issues@example.org"
web_url = "https://issues.example.org/"
subaddress_separator = "-"
data_dir = "/var/lib/trackerd"
shutdown_grace = "1m30s"
[store]
driver = "postgres"
dsn = "host=/run/postgresql dbname=trackerd"
max_open_conns = 8
query_timeout = "500ms"
sqlite_synchronous = "normal"
[smtp]
listen = ""
lmtp = true
max_message_bytes = 1000
max_recipients = 2
read_timeout = "2m"
write_timeout = "1h"
tls_cert = "/etc/ssl/c.pem"
tls_key = "/etc/ssl/k.pem"
[[poll]]
name = "imap"
url = "imap+starttls://t@h:143/Tracker"
password_file = "pw"
idle = true
after = "move:Done"
insecure_skip_verify = true
[[poll]]
name = "pop"
url = "pop3s://t@h"
token_file = "pw"
schedule = "@every 1m"
[mailgw]
unknown_sender = "reject"
keep_real_from = true
keep_quoted_text = "new"
leave_body_unchanged = "yes"
ignore_list_mail = true
subject_prefix_parsing = "loose"
subject_suffix_parsing = "none"
subject_content_match = "activity +12h"
subject_updates_title = true
body_commands = false
trust = "authenticated"
trusted_authserv_ids = ["mx.example.org", "mx2.example.org"]
max_new_issues_per_sender_hour = 3
[nosy]
add_author = "new"
add_recipients = "no"
messages_to_author = "nosy"
max_attachment_bytes = 0
[outgoing]
relay = "smtps://mx.example.org"
username = "u"
password_file = "pw"
dkim_domain = "example.org"
dkim_selector = "s"
dkim_key_file = "key.pem"
max_attempts = 1
[schema]
statuses = ["open", "closed"]
default_status = "open"
reopen_status = "open"
closed_statuses = ["closed"]
priorities = ["high", "low"]
default_priority = "low"
keywords = ["easy", "docs"]
[web]
listen = ":8080"
public = false
[log]
level = "debug"
format = "json"
`), dir)
	if err != nil {
		t.Fatalf("Parse(custom) error:\n%v", err)
	}
	for _, tt := range []struct {
		name string
		c    *Config
	}{{"default", Default()}, {"custom", custom}} {
		var buf bytes.Buffer
		if err := tt.c.WriteTOML(&buf); err != nil {
			t.Fatalf("%s: WriteTOML: %v", tt.name, err)
		}
		got, err := Parse(buf.Bytes(), "")
		if err != nil {
			t.Fatalf("%s: Parse(WriteTOML output) error:\n%v\noutput:\n%s", tt.name, err, buf.String())
		}
		if diff := cmp.Diff(tt.c, got); diff != "" {
			t.Errorf("%s: Parse(WriteTOML output) differs (-want +got):\n%s\noutput:\n%s", tt.name, diff, buf.String())
		}
	}
}

// TestLoad checks that relative secret files are found beside the config
// file, and that a missing config file is a plain error.
func TestLoad(t *testing.T) {
	dir := secretDir(t)
	path := filepath.Join(dir, "trackerd.toml")
	if err := os.WriteFile(path, []byte(goodPoll), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q) error:\n%v", path, err)
	}
	if got, want := c.Poll[0].Password, "s3cret"; got != want {
		t.Errorf("Load(%q): Poll[0].Password = %q, want %q", path, got, want)
	}
	if got, want := c.Tracker.DataDir, "./trackerd-data"; got != want {
		t.Errorf("Load(%q): Tracker.DataDir = %q, want %q (relative to the working directory)", path, got, want)
	}

	missing := filepath.Join(dir, "nope.toml")
	_, err = Load(missing)
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(%q) = %v, want a wrapped os.ErrNotExist", missing, err)
	}
}

func TestParseContentMatch(t *testing.T) {
	tests := []struct {
		in     string
		mode   string
		window time.Duration
		ok     bool
	}{
		{"always", "always", 0, true},
		{"never", "never", 0, true},
		{"creation +7d", "creation", 7 * 24 * time.Hour, true},
		{"activity +12h", "activity", 12 * time.Hour, true},
		{"activity + 30m", "activity", 30 * time.Minute, true},
		{"  creation   +45s ", "creation", 45 * time.Second, true},
		{"", "", 0, false},
		{"sometimes", "", 0, false},
		{"always +1d", "", 0, false},
		{"creation", "", 0, false},
		{"creation 7d", "", 0, false},
		{"creation +d", "", 0, false},
		{"creation +7", "", 0, false},
		{"creation +7w", "", 0, false},
		{"creation +0d", "", 0, false},
		{"creation +-1d", "", 0, false},
		{"creation ++1d", "", 0, false},
		{"creation +1.5d", "", 0, false},
		{"creation +99999999999999d", "", 0, false},
		{"Creation +7d", "", 0, false},
	}
	for _, tt := range tests {
		mode, window, err := ParseContentMatch(tt.in)
		if (err == nil) != tt.ok || mode != tt.mode || window != tt.window {
			t.Errorf("ParseContentMatch(%q) = %q, %v, %v; want %q, %v, ok=%v", tt.in, mode, window, err, tt.mode, tt.window, tt.ok)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string
	}{
		{"60s", time.Minute, "1m"},
		{"90s", 90 * time.Second, "90s"},
		{"1h30m", 90 * time.Minute, "90m"},
		{"2h", 2 * time.Hour, "2h"},
		{"0", 0, "0s"},
		{"1.5s", 1500 * time.Millisecond, "1.5s"},
		{"-5s", -5 * time.Second, "-5s"},
	}
	for _, tt := range tests {
		var d Duration
		if err := d.UnmarshalText([]byte(tt.in)); err != nil || time.Duration(d) != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, nil", tt.in, time.Duration(d), err, tt.want)
			continue
		}
		if text, err := d.MarshalText(); err != nil || string(text) != tt.text {
			t.Errorf("Duration(%v).MarshalText() = %q, %v; want %q, nil", tt.want, text, err, tt.text)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("5 parsecs")); err == nil || err.Error() != `invalid duration "5 parsecs"` {
		t.Errorf(`UnmarshalText("5 parsecs") = %v, want invalid duration "5 parsecs"`, err)
	}
}
