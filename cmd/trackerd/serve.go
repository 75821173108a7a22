package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/notify"
	"github.com/trackerd/trackerd/store"
)

// serveEnv is what serve builds once and its components share.
type serveEnv struct {
	cfg      *config.Config
	st       *store.Store
	log      *slog.Logger
	gw       *mailgw.Gateway
	notifier *notify.Worker
}

// component is one long-running part of serve (listener, pollers, notifier,
// web view). run blocks until ctx is cancelled, then finishes its in-flight
// work and returns; an error from one stops them all.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// serveGCPercent is serve's garbage collector target (GOGC) unless the
// environment sets GOGC: serve's live heap is small (a few MiB between
// batches) and every mail allocates its raw bytes several times over
// (reading, parsing, the driver's encoding), so the default of 100
// collects often for little; 400 took a tenth of serve's CPU per mail
// off the listener's benchmark (docs/notes/issue-4-speed-5.md).
const serveGCPercent = 400

func serveGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

func cmdServe(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("serve")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := needArgs(pos, 0, "serve [-config FILE]"); err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, a.stderr)
	serveGC()

	// Signals are watched from before the store opens, so a SIGTERM during a
	// slow open is not lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("store open", "driver", st.Driver(), "dsn", cfg.RedactedDSN())

	sender, err := notify.NewSender(cfg)
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	defer notify.CloseSender(sender)
	notifier := notify.New(st, cfg, sender, log)
	env := &serveEnv{
		cfg:      cfg,
		st:       st,
		log:      log,
		notifier: notifier,
		// One gateway for every source; it kicks the notifier after each
		// commit that queued mail.
		gw: mailgw.New(st, cfg, log, mailgw.Options{OnCommit: notifier.Kick}),
	}
	comps := []component{{name: "notifier", run: notifier.Run}}
	for _, build := range []func(*serveEnv) ([]component, error){smtpComponents, pollComponents, webComponents, searchComponents} {
		cs, err := build(env)
		if err != nil {
			return &exitError{code: exitConfig, err: err}
		}
		comps = append(comps, cs...)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	for _, c := range comps {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%s: panic: %v", c.name, r)
				}
			}()
			if err := c.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	done := make(chan error, 1)
	go func() {
		<-gctx.Done() // every component stopped by itself, or we cancelled
		done <- g.Wait()
	}()
	log.Info("trackerd ready", "version", version, "components", len(comps))

	select {
	case err := <-done:
		// A component failed (ctx was not cancelled by us).
		return err
	case sig := <-sigs:
		grace := time.Duration(cfg.Tracker.ShutdownGrace)
		log.Info("shutting down: finishing in-flight work", "signal", sig.String(), "grace", grace.String())
		cancel()
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			log.Info("stopped")
			return nil
		case sig := <-sigs:
			return &exitError{code: exitFailure, err: fmt.Errorf("second signal (%s): exiting now", sig)}
		case <-timer.C:
			return &exitError{code: exitFailure, err: fmt.Errorf("in-flight work did not finish within %s: exiting", grace)}
		}
	}
}

// newLogger builds the one logger of the process from [log].
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
