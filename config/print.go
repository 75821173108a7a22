package config

import (
	_ "embed"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

//go:embed starter.toml
var starter string

// Starter returns a commented config file that sets every key to its
// default and explains it, with a commented-out [[poll]] example; it is
// what "trackerd config init" writes. Parse accepts it and yields
// Default().
func Starter() []byte {
	return []byte(starter)
}

// WriteTOML writes c as TOML that Parse accepts, with secrets redacted:
// the toml:"-" fields (secrets read from files) are never written; a
// DSN read from store.dsn_file is left out, as the file still names it;
// the password in a DSN (URL or key=value form) or in a poll or relay
// URL is replaced by REDACTED.
func (c *Config) WriteTOML(w io.Writer) error {
	cp := *c
	cp.Poll = slices.Clone(c.Poll)
	if cp.Store.DSNFile != "" {
		cp.Store.DSN = ""
	}
	cp.Store.DSN = redactDSN(cp.Store.DSN)
	for i := range cp.Poll {
		cp.Poll[i].URL = redactURL(cp.Poll[i].URL)
	}
	cp.Outgoing.Relay = redactURL(cp.Outgoing.Relay)

	if _, err := io.WriteString(w, "# trackerd effective configuration; secrets are redacted.\n\n"); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	enc := toml.NewEncoder(w)
	enc.Indent = ""
	if err := enc.Encode(&cp); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// redacted replaces every password that WriteTOML prints.
const redacted = "REDACTED"

// redactDSN replaces the password of a URL DSN (postgres://u:pw@h/db)
// and every password=... parameter (key=value DSN or URL query).
func redactDSN(dsn string) string {
	dsn = redactURL(dsn)
	re := regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)
	return re.ReplaceAllString(dsn, "${1}"+redacted)
}

// redactURL replaces the password in a URL's user info. A string with
// "://" that does not parse loses everything between "user:" and the
// last "@" rather than risk printing a password.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	u, err := url.Parse(s)
	if err == nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
			return u.String()
		}
		return s
	}
	at := strings.LastIndexByte(s, '@')
	colon := strings.IndexByte(s[i+3:], ':')
	if at < 0 || colon < 0 || i+3+colon > at {
		return s
	}
	return s[:i+3+colon+1] + redacted + s[at:]
}

// RedactedDSN returns the effective store DSN with any password replaced,
// for logs.
func (c *Config) RedactedDSN() string { return redactDSN(c.StoreDSN()) }
