// Command trackerd is an email-first issue tracker daemon.
//
// This package is wiring only: it parses flags, loads the config, opens the
// store, constructs the components and runs them. Behaviour lives in the
// packages it calls.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, from sysexits(3) where one fits.
const (
	exitOK       = 0
	exitFailure  = 1  // the command ran and failed (not found, duplicate, ...)
	exitUsage    = 64 // EX_USAGE: bad flags or arguments
	exitTempFail = 75 // EX_TEMPFAIL: our own temporary fault (store unreachable, ...)
	exitConfig   = 78 // EX_CONFIG: the config file is invalid
)

// exitError carries the process exit code for an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// app is one invocation of the command: its streams and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string // from -config; "" means TRACKERD_CONFIG, ./trackerd.toml, defaults
}

type command struct {
	run  func(ctx context.Context, a *app, args []string) error
	help string
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {cmdServe, "run what the config enables until SIGINT/SIGTERM"},
		"config":  {cmdConfig, "check|init|print the configuration"},
		"user":    {cmdUser, "add|list|show|set|address: manage users"},
		"issue":   {cmdIssue, "list|show ID [-json]: read issues"},
		"version": {cmdVersion, "print the version"},
		"deliver": {cmdDeliver, "file one message from stdin (for an MTA pipe)"},
		"import":  {cmdImport, "mbox|maildir PATH [-quiet]: file every mail of an archive"},
		"inbound": {cmdInbound, "list|show|reprocess: the raw archive of incoming mail"},
		"outbox":  {cmdOutbox, "list|retry|drop: the notification queue"},
		"poll":    {cmdPoll, "NAME|URL: one pass over a mailbox (for system cron)"},
	}
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(a.main(context.Background(), os.Args[1:]))
}

// main runs the command line args and returns the process exit code.
func (a *app) main(ctx context.Context, args []string) int {
	err := a.dispatch(ctx, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(a.stderr, "trackerd: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trackerd", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.configPath, "config", "", "config `FILE` (default: $TRACKERD_CONFIG, else ./trackerd.toml, else built-in defaults)")
	fs.Usage = func() { a.usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: exitUsage, err: err}
	}
	if fs.NArg() == 0 {
		a.usage(fs)
		return usageErrorf("no command given")
	}
	name := fs.Arg(0)
	cmd, ok := commands()[name]
	if !ok {
		return usageErrorf("unknown command %q (try: trackerd -h)", name)
	}
	return cmd.run(ctx, a, fs.Args()[1:])
}

func (a *app) usage(fs *flag.FlagSet) {
	fmt.Fprintln(a.stderr, "usage: trackerd [-config FILE] COMMAND [ARGS]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(a.stderr, "  %-8s %s\n", n, cmds[n].help)
	}
	fmt.Fprintln(a.stderr, "\nflags:")
	fs.PrintDefaults()
}

// newFlags returns a flag set for a subcommand. Every subcommand accepts
// -config too, so `trackerd serve -config F` works like `trackerd -config F serve`.
func (a *app) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("trackerd "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.configPath, "config", a.configPath, "config `FILE`")
	return fs
}

// parseFlags parses args with fs, allowing flags before and after the
// positional arguments (`issue show 3 -json` and `issue show -json 3`).
// Everything after "--" is positional. It returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, arg := range args {
		if arg == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: exitUsage, err: err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return append(pos, tail...), nil
}

// configFile resolves which config file to read: -config, else
// TRACKERD_CONFIG, else ./trackerd.toml when it exists, else "" (defaults).
func (a *app) configFile() string {
	if a.configPath != "" {
		return a.configPath
	}
	if p := os.Getenv("TRACKERD_CONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat("trackerd.toml"); err == nil {
		return "trackerd.toml"
	}
	return ""
}

// loadConfig loads and validates the effective config.
func (a *app) loadConfig() (*config.Config, error) {
	path := a.configFile()
	if path == "" {
		cfg := config.Default()
		if err := cfg.Validate(); err != nil {
			return nil, &exitError{code: exitConfig, err: fmt.Errorf("built-in defaults: %w", err)}
		}
		return cfg, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &exitError{code: exitConfig, err: err}
	}
	return cfg, nil
}

// openStore opens the store the config names. A failure to reach it is a
// temporary fault (exit 75): the database may be starting or the disk full.
func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	st, err := store.Open(ctx, store.Options{
		Driver:            cfg.Store.Driver,
		DSN:               cfg.StoreDSN(),
		MaxOpenConns:      cfg.Store.MaxOpenConns,
		QueryTimeout:      time.Duration(cfg.Store.QueryTimeout),
		SQLiteSynchronous: cfg.Store.SQLiteSynchronous,
	})
	if err != nil {
		code := exitTempFail
		if errors.Is(err, store.ErrSchemaTooNew) {
			code = exitFailure
		}
		return nil, &exitError{code: code, err: err}
	}
	return st, nil
}

// loadStore loads the config and opens its store; the caller closes it.
func (a *app) loadStore(ctx context.Context) (*config.Config, *store.Store, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// needArgs checks the number of positional arguments.
func needArgs(pos []string, n int, usage string) error {
	if len(pos) != n {
		return usageErrorf("usage: trackerd %s", usage)
	}
	return nil
}

func cmdVersion(_ context.Context, a *app, args []string) error {
	fs := a.newFlags("version")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := needArgs(pos, 0, "version"); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "trackerd %s\n", version)
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
