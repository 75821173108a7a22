package poll

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/robfig/cron/v3"

	"github.com/trackerd/trackerd/store"
)

// Run polls until ctx is cancelled, then finishes the batch in flight and
// returns nil. With Mailbox.Idle it keeps an IMAP connection open and
// waits for new mail with IDLE (RFC 2177); otherwise it makes a pass on
// Mailbox.Schedule. Failures (a wrong password, an unreachable server, a
// bad certificate, the store down) are logged, one line each, and retried
// with exponential backoff; Run never returns them.
func (p *Poller) Run(ctx context.Context) error {
	if p.mb.Idle {
		p.runIdle(ctx)
		return nil
	}
	return p.runCron(ctx)
}

// backoff is the wait after consecutive failures: MinBackoff doubling up
// to MaxBackoff, with up to 20% jitter so that instances that failed
// together do not retry together.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 20)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

func (b *backoff) reset() { b.n = 0 }

// failed logs a failed pass or session: one line saying what failed and
// when the next attempt is.
func (p *Poller) failed(err error, retry time.Duration, n int) {
	p.log.Error("poll failed", "url", p.mb.Key(), "err", err, "failures", n, "retry_in", roundDuration(retry))
}

// roundDuration shows d to the second, or to the millisecond below one.
func roundDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// runCron makes a pass on the schedule. A pass still running when the
// next is due makes that one skip (cron.SkipIfStillRunning); after a
// failure, scheduled passes are skipped until the backoff has passed.
func (p *Poller) runCron(ctx context.Context) error {
	sched, err := cron.ParseStandard(p.mb.Schedule)
	if err != nil {
		// config.Validate refuses this; reaching here is a bug, not a
		// reason to stop serve.
		p.log.Error("poll disabled: invalid schedule", "schedule", p.mb.Schedule, "err", err)
		<-ctx.Done()
		return nil
	}
	clog := cronLogger{p.log}
	c := cron.New(cron.WithChain(cron.Recover(clog), cron.SkipIfStillRunning(clog)), cron.WithLogger(clog))
	var (
		mu       sync.Mutex
		bo       = backoff{min: p.o.MinBackoff, max: p.o.MaxBackoff}
		failures int
		notUntil time.Time
	)
	c.Schedule(sched, cron.FuncJob(func() {
		mu.Lock()
		wait := time.Until(notUntil)
		mu.Unlock()
		if wait > 0 {
			p.log.Debug("poll skipped: backing off after a failure", "retry_in", roundDuration(wait))
			return
		}
		_, err := p.Pass(ctx)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			if failures > 0 {
				p.log.Info("poll recovered", "after_failures", failures)
			}
			failures = 0
			bo.reset()
			notUntil = time.Time{}
		case errors.Is(err, ErrBusy):
			p.log.Info("poll skipped: another process is polling this mailbox")
		case ctx.Err() != nil:
			// Shutting down: not a failure of the mailbox.
		default:
			failures++
			d := bo.next()
			notUntil = time.Now().Add(d)
			p.failed(err, d, failures)
		}
	}))
	c.Start()
	p.log.Info("polling on schedule", "schedule", p.mb.Schedule, "url", p.mb.Key())
	<-ctx.Done()
	<-c.Stop().Done() // waits for a pass in flight
	return nil
}

// cronLogger adapts slog to cron.Logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}

// runIdle keeps a session open with the mailbox locked, makes a pass,
// then IDLEs until the server announces mail, and again; on any failure
// it waits with backoff and reconnects. While another process holds the
// mailbox it retries now and then, a standby ready to take over.
func (p *Poller) runIdle(ctx context.Context) {
	bo := backoff{min: p.o.MinBackoff, max: p.o.MaxBackoff}
	failures := 0
	p.log.Info("polling with IDLE", "url", p.mb.Key())
	for ctx.Err() == nil {
		ok, err := p.idleSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if ok {
			// The session worked for a while: a fresh failure starts
			// the backoff over.
			if failures > 0 {
				p.log.Info("poll recovered", "after_failures", failures)
			}
			failures = 0
			bo.reset()
		}
		var d time.Duration
		if errors.Is(err, ErrBusy) {
			d = max(p.o.MinBackoff, time.Minute)
			p.log.Info("another process is polling this mailbox; waiting to take over", "retry_in", d.String())
		} else {
			failures++
			d = bo.next()
			p.failed(err, d, failures)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// idleSession runs one IDLE session until it fails or ctx is cancelled.
// ok reports whether at least one pass succeeded.
func (p *Poller) idleSession(ctx context.Context) (ok bool, err error) {
	lk, err := p.locker.TryLock(ctx, p.mb.Key())
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return false, ErrBusy
		}
		return false, err
	}
	defer lk.Unlock(context.WithoutCancel(ctx))
	ctx, cancel := withLock(ctx, lk)
	defer cancel()

	start := time.Now()
	s, err := p.dialIMAP(ctx)
	if err != nil {
		p.record(Stats{}, err, time.Since(start))
		return false, err
	}
	defer s.close()
	canIdle := s.c.Caps().Has(imap.CapIdle) || s.c.Caps().Has(imap.CapIMAP4rev2)
	if !canIdle {
		p.log.Warn("the server does not support IDLE: polling every minute instead")
	}
	for {
		start := time.Now()
		st, err := s.pass(ctx)
		if ctx.Err() != nil {
			return ok, nil
		}
		p.record(st, err, time.Since(start))
		if err != nil {
			return ok, err
		}
		ok = true
		select {
		case <-s.notify: // mail arrived during the pass
			continue
		default:
		}
		if err := s.wait(ctx, canIdle); err != nil {
			if ctx.Err() != nil {
				return ok, nil
			}
			return ok, err
		}
	}
}

// wait blocks until the server announces new mail, IdleRefresh passes,
// or ctx is cancelled; with IDLE when the server has it, else by NOOPs.
func (s *imapSession) wait(ctx context.Context, canIdle bool) error {
	refresh := time.NewTimer(s.p.o.IdleRefresh)
	defer refresh.Stop()
	if !canIdle {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.notify:
				return nil
			case <-refresh.C:
				return nil
			case <-tick.C:
				if err := s.do(ctx, s.p.o.Timeout, func() error { return s.c.Noop().Wait() }); err != nil {
					return describe("NOOP", err)
				}
			}
		}
	}
	var idle *imapclient.IdleCommand
	err := s.do(ctx, s.p.o.Timeout, func() (err error) {
		idle, err = s.c.Idle()
		return err
	})
	if err != nil {
		return describe("IDLE", err)
	}
	select {
	case <-ctx.Done():
	case <-s.notify:
	case <-refresh.C:
	case <-s.c.Closed():
	}
	// Stopping IDLE is bounded like any exchange; a dead connection
	// fails it.
	err = s.do(context.Background(), s.p.o.Timeout, func() error {
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return describe("IDLE", err)
	}
	return nil
}
