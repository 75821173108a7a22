package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/trackerd/trackerd/web"
)

// Limits of the web view's HTTP server: a slow or stuck client cannot hold
// a connection for long.
const (
	webReadHeaderTimeout = 10 * time.Second
	webReadTimeout       = 30 * time.Second
	webWriteTimeout      = 60 * time.Second
	webIdleTimeout       = 2 * time.Minute
	webMaxHeaderBytes    = 64 << 10
)

// webComponents returns the serve components for the web view ([web]):
// none when web.listen is "". The port is bound here, before serve says
// it is ready, so a port in use fails the start.
func webComponents(env *serveEnv) ([]component, error) {
	cfg := env.cfg.Web
	if cfg.Listen == "" {
		return nil, nil
	}
	h, err := web.New(env.st, env.cfg, env.log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("web.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: webReadHeaderTimeout,
		ReadTimeout:       webReadTimeout,
		WriteTimeout:      webWriteTimeout,
		IdleTimeout:       webIdleTimeout,
		MaxHeaderBytes:    webMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(env.log.Handler(), slog.LevelWarn),
	}
	env.log.Info("web view listening", "addr", ln.Addr().String(), "public", cfg.Public)
	run := func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		// Finish the requests in flight; serve's grace period bounds
		// how long it waits for us.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(env.cfg.Tracker.ShutdownGrace))
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			return serr
		}
		return err
	}
	return []component{{name: "web", run: run}}, nil
}
