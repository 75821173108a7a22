package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/mailgw/poll"
)

// cmdPoll makes one pass over a configured mailbox or a URL, for system
// cron: `trackerd poll NAME` or `trackerd poll URL [-password-file F |
// -token-file F] [-after A] [-insecure-skip-verify]`. A URL naming a
// configured mailbox uses that entry. Exit 0 when the pass completed (or
// another process kept polling the mailbox for all of -wait), 75 when it
// failed.
func cmdPoll(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("poll")
	passwordFile := fs.String("password-file", "", "with a URL: the file holding the password")
	tokenFile := fs.String("token-file", "", "with a URL: the file holding an OAuth2 token (XOAUTH2)")
	after := fs.String("after", "delete", `with a URL: "delete", "flag" or "move:MAILBOX"`)
	insecure := fs.Bool("insecure-skip-verify", false, "with a URL: do not verify the server's TLS certificate")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for another process's pass over the mailbox to end")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	const usage = "poll NAME|URL [-wait D] [-password-file F | -token-file F] [-after A] [-insecure-skip-verify]"
	if err := needArgs(pos, 1, usage); err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	entry, err := pollEntry(cfg, pos[0], *passwordFile, *tokenFile, *after, *insecure)
	if err != nil {
		return err
	}
	mb, err := poll.FromConfig(entry)
	if err != nil {
		return usageErrorf("%v", err)
	}
	e, err := a.openMail(ctx, false, false)
	if err != nil {
		return err
	}
	defer e.st.Close()
	locker := e.st.NewLocker()
	defer locker.Close()
	p := poll.New(mb, e.gw, e.st, locker, poll.Options{Log: e.log, MaxMessageBytes: e.cfg.SMTP.MaxMessageBytes})
	// Another process's pass may be about to end, or its holder may have
	// died: PostgreSQL releases a dead session's advisory lock only once it
	// notices the connection is gone. So a busy mailbox is tried again for
	// a little while before this pass gives up.
	st, err := p.Pass(ctx)
	for deadline := time.Now().Add(*wait); errors.Is(err, poll.ErrBusy) && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		st, err = p.Pass(ctx)
	}
	if errors.Is(err, poll.ErrBusy) {
		fmt.Fprintf(a.stderr, "trackerd: poll %s: %v; nothing done\n", mb.Name, err)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s: fetched %d, filed %d, ignored %d (%d duplicates), rejected %d, acknowledged %d, too large %d\n",
		mb.Name, st.Fetched, st.Filed, st.Ignored, st.Duplicates, st.Rejected, st.Acknowledged, st.TooLarge)
	if st.Fetched > 0 {
		a.flushOutbox(ctx, e)
	}
	if err != nil {
		return &exitError{code: exitTempFail, err: fmt.Errorf("poll %s: %w", mb.Name, err)}
	}
	return nil
}

// pollEntry finds the [[poll]] entry for NAME, or for a URL: the entry
// whose URL names the same mailbox, else one made from the URL and the
// flags.
func pollEntry(cfg *config.Config, arg, passwordFile, tokenFile, after string, insecure bool) (config.Poll, error) {
	if !strings.Contains(arg, "://") {
		for _, p := range cfg.Poll {
			if p.Name == arg {
				return p, nil
			}
		}
		names := make([]string, len(cfg.Poll))
		for i, p := range cfg.Poll {
			names[i] = p.Name
		}
		return config.Poll{}, usageErrorf("poll: no [[poll]] entry named %q (configured: %s)", arg, strings.Join(names, ", "))
	}
	adhoc := config.Poll{URL: arg, After: after, InsecureSkipVerify: insecure, Schedule: "*/5 * * * *"}
	mb, err := poll.FromConfig(config.Poll{Name: "url", URL: arg, After: after})
	if err != nil {
		return config.Poll{}, usageErrorf("%v", err)
	}
	for _, p := range cfg.Poll {
		if c, err := poll.FromConfig(p); err == nil && c.Key() == mb.Key() && passwordFile == "" && tokenFile == "" {
			return p, nil
		}
	}
	// A name for logs and the archive's source: the user and host.
	adhoc.Name = mb.User + "@" + mb.Host
	switch {
	case (passwordFile == "") == (tokenFile == ""):
		return config.Poll{}, usageErrorf("poll %s: give -password-file or -token-file (the URL is not a configured mailbox)", arg)
	case passwordFile != "":
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return config.Poll{}, usageErrorf("poll: %v", err)
		}
		adhoc.PasswordFile, adhoc.Password = passwordFile, strings.TrimRight(string(b), "\r\n")
	default:
		adhoc.TokenFile = tokenFile
	}
	return adhoc, nil
}
