package notify

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/store"
)

// Worker defaults.
const (
	// claimBatch is how many rows one claim takes. Each claimed row is
	// leased; a row claimed but not reached before shutdown (or a crash)
	// waits for its lease to end, so the batch is small.
	claimBatch = 5
	// rowTimeout bounds rendering and sending one row.
	rowTimeout = time.Minute
	// markTimeout bounds recording the outcome of one row.
	markTimeout = 15 * time.Second
	// claimLease is how long a claimed row is hidden from other workers:
	// long enough for a whole batch at worst (claimBatch × (rowTimeout +
	// markTimeout)), so no row is sent twice while its worker is alive
	// (drain also stops a batch whose lease is running out). About 7
	// minutes: the longest a crashed worker's rows wait.
	claimLease = claimBatch*(rowTimeout+markTimeout) + time.Minute
	// pollInterval is how long Run sleeps when not kicked.
	pollInterval = 30 * time.Second
	// backoffBase and backoffMax shape the retry delay: backoffBase ·
	// 2^(attempts-1), at most backoffMax, ±25% jitter.
	backoffBase = time.Minute
	backoffMax  = 6 * time.Hour
	// maxErrorText bounds the error text kept in outbox.last_error.
	maxErrorText = 1000
)

// Worker sends the outbox: it claims due rows, renders each (outside any
// transaction), hands it to its Sender and records the outcome — sent,
// retry later with exponential backoff, or failed for good. Delivery is at
// least once: a row whose worker dies between Send and MarkSent is sent
// again when its lease ends. Several Workers, in one process or in several
// sharing a PostgreSQL database, never hold the same row at once
// (store.ClaimOutbox).
//
// A Worker is safe for concurrent use: Run in serve, Flush from a
// command, Kick from anywhere.
type Worker struct {
	st   *store.Store
	cfg  *config.Config
	send Sender
	log  *slog.Logger
	kick chan struct{}
	poll time.Duration // pollInterval; tests shorten it

	mu  sync.Mutex
	key []byte // the token key, loaded on first use
}

// New returns a Worker that sends st's outbox through s (not nil),
// rendering with cfg. cfg must not change afterwards. A nil log discards.
func New(st *store.Store, cfg *config.Config, s Sender, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{st: st, cfg: cfg, send: s, log: log, kick: make(chan struct{}, 1), poll: pollInterval}
}

// Kick wakes Run now, if it is sleeping, to look for due rows; call it
// after committing outbox rows. It never blocks: kicks while Run is busy
// collapse into one.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run sends due rows until ctx is cancelled: it works until no row is due,
// then sleeps until kicked or for a poll interval (30 s). A store error is
// logged and retried at the next wake-up. When ctx is cancelled, the row
// in flight is finished (its send and its outcome are not cut short) and
// Run returns nil; rows claimed with it but not started wait for their
// lease to end. Run recovers a panic while handling a row, logs it and
// treats it as a failed attempt of that row.
func (w *Worker) Run(ctx context.Context) error {
	for {
		if _, err := w.drain(ctx, time.Time{}); err != nil && ctx.Err() == nil {
			w.log.Warn("outbox pass failed", "err", err)
		}
		timer := time.NewTimer(w.poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-w.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Flush handles every row due now once and returns how many it sent; it is
// for commands that run without serve (deliver, import) after they commit.
// Failed sends are not Flush errors: their rows are scheduled for a retry
// (or failed) as in Run. The error is a store failure, or ctx's error if it
// was cancelled (after the row in flight).
func (w *Worker) Flush(ctx context.Context) (sent int, err error) {
	return w.drain(ctx, time.Now())
}

// drain claims and handles batches until none is due. With a non-zero
// since it also stops after a batch holding a row created after since or
// one it has handled already (due again after a failure), so that a Flush
// ends even while other processes keep adding rows.
func (w *Worker) drain(ctx context.Context, since time.Time) (sent int, err error) {
	var seen map[int64]bool
	if !since.IsZero() {
		seen = map[int64]bool{}
	}
	for {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		claimed := time.Now()
		rows, err := w.st.ClaimOutbox(ctx, claimed, claimBatch, claimLease)
		if err != nil {
			return sent, fmt.Errorf("notify: %w", err)
		}
		if len(rows) == 0 {
			return sent, nil
		}
		more := true
		for i := range rows {
			row := &rows[i]
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			if time.Since(claimed) > claimLease-rowTimeout-markTimeout {
				// The lease would end mid-row and another worker could take
				// the row: leave the rest to whoever claims them next.
				w.log.Warn("outbox batch took too long; leaving rows for later", "left", len(rows)-i)
				break
			}
			if seen != nil {
				if seen[row.ID] || row.Created.After(since) {
					more = false
				}
				seen[row.ID] = true
			}
			ok, err := w.handle(ctx, row)
			if ok {
				sent++
			}
			if err != nil {
				return sent, err
			}
		}
		if !more {
			return sent, nil
		}
	}
}

// handle renders and sends one claimed row and records the outcome. ok
// reports a send; err is a failure to record the outcome (the row then
// comes back when its lease ends). Neither is cut short by ctx.
func (w *Worker) handle(ctx context.Context, row *store.Outbox) (ok bool, err error) {
	ctx = context.WithoutCancel(ctx)
	sendErr := w.attempt(ctx, row)

	mctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	log := w.log.With("outbox_id", row.ID, "issue_id", row.IssueID, "recipient", row.Recipient, "kind", row.Kind)
	if sendErr == nil {
		if err := w.st.MarkSent(mctx, row.ID, time.Time{}); err != nil {
			return true, fmt.Errorf("notify: sent outbox %d but could not record it (it will be sent again): %w", row.ID, err)
		}
		log.Info("notified")
		return true, nil
	}
	text := sendErr.Error()
	if len(text) > maxErrorText {
		text = text[:maxErrorText]
	}
	attempts := row.Attempts + 1
	if Permanent(sendErr) || attempts >= w.cfg.Outgoing.MaxAttempts {
		if err := w.st.MarkFailed(mctx, row.ID, text); err != nil {
			return false, fmt.Errorf("notify: mark outbox %d failed: %w", row.ID, err)
		}
		log.Info("notify_failed", "attempts", attempts, "permanent", Permanent(sendErr), "err", text)
		return false, nil
	}
	next := time.Now().Add(backoff(attempts))
	if err := w.st.MarkRetry(mctx, row.ID, next, text); err != nil {
		return false, fmt.Errorf("notify: mark outbox %d for retry: %w", row.ID, err)
	}
	log.Info("notify_deferred", "attempts", attempts, "next_attempt", next.UTC().Format(time.RFC3339), "err", text)
	return false, nil
}

// attempt renders row and sends it, within rowTimeout. A panic becomes an
// error (temporary: a later trackerd may have the fix).
func (w *Worker) attempt(ctx context.Context, row *store.Outbox) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("panic while sending outbox row", "outbox_id", row.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("notify: panic: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, rowTimeout)
	defer cancel()
	rd := &renderer{r: w.st, cfg: w.cfg, key: w.tokenKey}
	m, err := rd.render(ctx, row)
	if err != nil {
		return err
	}
	if err := w.send.Send(ctx, m); err != nil {
		return fmt.Errorf("notify: send outbox %d: %w", row.ID, err)
	}
	return nil
}

// tokenKey returns the token key, loading (or creating) it on first use;
// a failure is not cached.
func (w *Worker) tokenKey() ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.key == nil {
		key, err := loadTokenKey(w.cfg.Tracker.DataDir)
		if err != nil {
			return nil, err
		}
		w.key = key
	}
	return w.key, nil
}

// backoff is the delay before attempt attempts+1: backoffBase ·
// 2^(attempts-1), capped at backoffMax, with ±25% jitter so rows that
// failed together do not come back together.
func backoff(attempts int) time.Duration {
	d := backoffMax
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 20 {
		d = min(backoffBase<<(attempts-1), backoffMax)
	}
	return d*3/4 + rand.N(d/2)
}
