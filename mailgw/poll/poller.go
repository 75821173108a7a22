// Package poll fetches mail from IMAP and POP3 mailboxes into the
// gateway, exactly once (DESIGN §2): a mail is acknowledged to the
// mailbox — deleted, moved or flagged — only after the gateway's
// transaction has committed, and a mail fetched again (after a crash
// between commit and acknowledgement, a failed after-action, a second
// poller, or the same mail put back) is recognised by the store and not
// filed twice.
//
// A pass is: take the mailbox's lock (store.Locker: one poller per
// mailbox across every process on the database), fetch in batches, file
// each batch with Gateway.DeliverBatch (one transaction), then the
// after-action for the batch, then the cursor. IMAP keeps a cursor of
// UIDVALIDITY and the last UID handled; POP3 remembers the UIDLs it took.
//
// Run drives passes inside serve: on a cron schedule, or continuously
// with IMAP IDLE, retrying with backoff after failures and never
// returning an error that would stop serve.
package poll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/trackerd/trackerd/internal/metrics"
	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/store"
)

// Defaults for Options.
const (
	DefaultTimeout    = time.Minute
	DefaultBatchSize  = 50
	DefaultBatchBytes = 32 << 20
	// DefaultMaxBackoff caps the wait between attempts after failures.
	DefaultMaxBackoff = 10 * time.Minute
	// DefaultIdleRefresh is how long an IDLE waits before a pass anyway
	// (a missed notification, or a connection that died silently, is
	// found within it). RFC 9051 §6.3.13 asks clients to re-issue IDLE
	// at least every 29 minutes.
	DefaultIdleRefresh = 10 * time.Minute
)

// Options tune a Poller. The zero value (with a Log) is what serve uses.
type Options struct {
	Log *slog.Logger
	// MaxMessageBytes is the largest mail fetched; a larger one is left in
	// the mailbox, with a warning. 0 means 25 MiB (smtp.max_message_bytes'
	// default).
	MaxMessageBytes int64
	// Timeout bounds each network exchange; 0 means DefaultTimeout.
	Timeout time.Duration
	// BatchSize and BatchBytes bound one batch (one transaction); 0
	// means the defaults.
	BatchSize  int
	BatchBytes int64
	// RootCAs verifies servers' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// MinBackoff and MaxBackoff bound the wait after a failure (doubling
	// from MinBackoff); 0 means 5 seconds and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// IdleRefresh: see DefaultIdleRefresh; 0 means that.
	IdleRefresh time.Duration
}

// Poller polls one mailbox.
type Poller struct {
	mb     *Mailbox
	gw     *mailgw.Gateway
	st     *store.Store
	locker *store.Locker
	log    *slog.Logger
	o      Options
}

// New returns a Poller filing mb's mail through gw. locker provides the
// one-poller-per-mailbox lock; one Locker serves every Poller of a
// process.
func New(mb *Mailbox, gw *mailgw.Gateway, st *store.Store, locker *store.Locker, o Options) *Poller {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 25 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.IdleRefresh <= 0 {
		o.IdleRefresh = DefaultIdleRefresh
	}
	log := o.Log.With("mailbox", mb.Name)
	return &Poller{mb: mb, gw: gw, st: st, locker: locker, log: log, o: o}
}

// Mailbox returns the polled mailbox.
func (p *Poller) Mailbox() *Mailbox { return p.mb }

// ErrBusy: another process (or Poller) is polling the mailbox now; the
// pass did nothing.
var ErrBusy = errors.New("the mailbox is being polled by another process")

// Stats counts what one pass did.
type Stats struct {
	// Fetched mails were handed to the gateway, which filed, ignored
	// (Duplicates among them: filed before) or rejected them.
	Fetched, Filed, Ignored, Rejected, Duplicates int
	// Acknowledged mails got the after-action (deleted, moved, flagged).
	Acknowledged int
	// TooLarge mails were over MaxMessageBytes and left in the mailbox.
	TooLarge int
}

func (s *Stats) add(rs []mailgw.Result) {
	s.Fetched += len(rs)
	for _, r := range rs {
		switch r.Status {
		case store.InboundFiled:
			s.Filed++
		case store.InboundRejected:
			s.Rejected++
		default:
			s.Ignored++
		}
		if r.Duplicate {
			s.Duplicates++
		}
	}
}

// Pass makes one pass over the mailbox: everything new is filed and
// acknowledged, and the cursor moved. It returns ErrBusy when another
// poller holds the mailbox. On any other error, whatever was committed
// before it stays committed and the rest stays in the mailbox for the
// next pass. Cancelling ctx stops the pass between batches; a batch in
// flight is finished (filed, acknowledged, cursor moved).
func (p *Poller) Pass(ctx context.Context) (Stats, error) {
	lk, err := p.locker.TryLock(ctx, p.mb.Key())
	if errors.Is(err, store.ErrLocked) {
		return Stats{}, ErrBusy
	}
	if err != nil {
		return Stats{}, err
	}
	defer lk.Unlock(context.WithoutCancel(ctx))
	ctx, cancel := withLock(ctx, lk)
	defer cancel()
	start := time.Now()
	var st Stats
	if p.mb.Proto == "pop3" {
		st, err = p.passPOP3(ctx)
	} else {
		st, err = p.passIMAPOnce(ctx)
	}
	p.record(st, err, time.Since(start))
	return st, err
}

// withLock returns a context cancelled when the lock is lost.
func withLock(ctx context.Context, lk *store.Lock) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	go func() {
		select {
		case <-lk.Lost():
			cancel(errLockLost)
		case <-stop:
		}
	}()
	return ctx, func() { close(stop); cancel(nil) }
}

var errLockLost = errors.New("the mailbox lock was lost (database connection broke)")

// record counts a pass in the metrics and logs it.
func (p *Poller) record(st Stats, err error, took time.Duration) {
	if errors.Is(err, context.Canceled) {
		return // shutting down: not a pass of its own
	}
	if err != nil {
		metrics.PollRuns.WithLabelValues(p.mb.Name, "error").Inc()
		return // the caller logs the error
	}
	metrics.PollRuns.WithLabelValues(p.mb.Name, "ok").Inc()
	level := slog.LevelDebug
	if st.Fetched > 0 || st.TooLarge > 0 {
		level = slog.LevelInfo
	}
	p.log.Log(context.Background(), level, "poll pass done", "fetched", st.Fetched, "filed", st.Filed,
		"ignored", st.Ignored, "duplicates", st.Duplicates, "rejected", st.Rejected,
		"acknowledged", st.Acknowledged, "too_large", st.TooLarge, "took", took.Round(time.Millisecond).String())
}

// tlsConfig is the client TLS config for the mailbox's server.
func (p *Poller) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         p.mb.Host,
		RootCAs:            p.o.RootCAs,
		InsecureSkipVerify: p.mb.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
}

// guard closes a connection when an exchange takes longer than d or ctx
// is cancelled (context.Background() for an exchange that shutdown must
// not cut). The returned stop must be called when the exchange is over.
func guard(ctx context.Context, d time.Duration, closeConn func()) (stop func()) {
	t := time.AfterFunc(d, closeConn)
	stopCtx := context.AfterFunc(ctx, closeConn)
	return func() { t.Stop(); stopCtx() }
}

// describe wraps err with what the poller was doing, for the one log line
// an operator reads.
func describe(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
