package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/metrics"
	"github.com/trackerd/trackerd/store"
)

// Worker defaults.
const (
	// claimBatch is how many rows one claim takes: enough that claiming,
	// the batch reads and the token writes cost little per mail. The
	// worker claims the next batch only when the senders have room for
	// it, so no more than about two batches are held at once.
	claimBatch = 256
	// markBatch bounds how many outcomes one marking transaction records.
	markBatch = 1024
	// markTimeout bounds recording outcomes.
	markTimeout = 30 * time.Second
	// recordEvery spaces the transactions that record outcomes, so that
	// each records many (one commit costs about as much as sending a few
	// mails). It bounds what a crash can resend: the mails sent in the
	// last recordEvery and those being sent.
	recordEvery = 20 * time.Millisecond
	// pollInterval is the longest Run sleeps when not kicked, for rows
	// another process queued (on SQLite, or PostgreSQL with LISTEN
	// down).
	pollInterval = 30 * time.Second
	// backoffBase and backoffMax shape the retry delay: backoffBase ·
	// 2^(attempts-1), at most backoffMax, ±25% jitter.
	backoffBase = time.Minute
	backoffMax  = 6 * time.Hour
	// maxErrorText bounds the error text kept in outbox.last_error.
	maxErrorText = 1000
)

// Worker sends the outbox: it claims due rows in batches, renders them
// (outside any transaction), hands them to its Sender on
// outgoing.connections goroutines at once and records the outcomes —
// sent, retry later with exponential backoff, or failed for good — a
// group at a time.
//
// Delivery is at least once. A claimed row is leased for
// outgoing.claim_lease, renewed while the worker holds it; a row whose
// worker dies between its send and the record of it is sent again (with
// the same Message-ID: rendering is deterministic) when the lease ends.
// Outcomes are recorded as soon as the previous record has committed, so
// what a crash can resend is the mails being sent at that moment and
// those sent during the last record. Several Workers, in one process or
// in several sharing a PostgreSQL database, never hold the same row at
// once (store.ClaimOutbox).
//
// When the Sender reports the transport unavailable (UnavailableError:
// the relay is down), the pass stops: the rows in hand are put back, due
// after the failed row's backoff, without counting an attempt; only the
// rows actually tried count one, so an outage does not use up every
// row's max_attempts.
//
// A Worker is safe for concurrent use: Run in serve, Flush from a
// command, Kick from anywhere.
type Worker struct {
	st    *store.Store
	cfg   *config.Config
	send  Sender
	log   *slog.Logger
	kick  chan struct{}
	poll  time.Duration // pollInterval; tests shorten it
	conns int
	lease time.Duration
	wait  time.Duration // outgoing.timeout
	base  time.Duration // backoffBase; tests shorten it
	known tokenSet

	mu  sync.Mutex
	key []byte // the token key, loaded on first use
}

// New returns a Worker that sends st's outbox through s (not nil),
// rendering with cfg. cfg must not change afterwards. A nil log discards.
func New(st *store.Store, cfg *config.Config, s Sender, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{st: st, cfg: cfg, send: s, log: log, kick: make(chan struct{}, 1), poll: pollInterval,
		conns: cfg.Outgoing.Connections, lease: time.Duration(cfg.Outgoing.ClaimLease), base: backoffBase}
	if w.conns <= 0 {
		w.conns = 1
	}
	if w.lease < time.Second {
		w.lease = time.Minute
	}
	if w.wait = time.Duration(cfg.Outgoing.Timeout); w.wait <= 0 {
		w.wait = 2 * time.Minute
	}
	return w
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
// then sleeps until kicked, until the next row is due, or for at most a
// poll interval (30 s). On PostgreSQL it also LISTENs for rows committed by
// any trackerd on the database (store.ListenOutbox), and looks again
// after each reconnection. A store error is logged and retried at the
// next wake-up. When ctx is cancelled, the mails being sent are finished
// and recorded, rows not yet started are put back (due at once), and Run
// returns nil. Run recovers a panic while handling a row, logs it and
// treats it as a failed attempt of that row.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if w.st.Driver() == store.DriverPostgres && w.cfg.Store.DSN != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					w.log.Error("panic in the outbox listener", "panic", p, "stack", string(debug.Stack()))
				}
			}()
			for ctx.Err() == nil {
				err := store.ListenOutbox(ctx, w.cfg.Store.DSN, w.Kick)
				if err == nil {
					return
				}
				w.log.Warn("cannot LISTEN for outbox rows; polling meanwhile", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(w.poll):
				}
			}
		}()
	}
	for {
		if _, err := w.drain(ctx, time.Time{}); err != nil && ctx.Err() == nil {
			w.log.Warn("outbox pass failed", "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := w.poll
		if due, ok, err := w.st.NextOutboxDue(ctx); err == nil && ok {
			wait = min(wait, max(time.Until(due)+10*time.Millisecond, 10*time.Millisecond))
		}
		timer := time.NewTimer(wait)
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
// was cancelled (after the mails in flight).
func (w *Worker) Flush(ctx context.Context) (sent int, err error) {
	return w.drain(ctx, time.Now())
}

// job is one claimed row on its way through a pass.
type job struct {
	row      store.Outbox
	mail     *Mail
	err      error        // from rendering or sending; nil after a send
	leaseEnd atomic.Int64 // Unix nanoseconds
	skip     bool         // not tried: put back without an attempt
	deferTo  time.Time    // with skip: when it is due again (zero: now)
	took     time.Duration
}

// pass is one drain: the claimed rows not yet recorded and the counts.
type pass struct {
	w *Worker

	markMu sync.Mutex // held while recording or renewing
	held   map[int64]*job

	down     atomic.Bool // the transport is unavailable: stop
	downNext atomic.Int64
	sent     atomic.Int64
	markErr  error
}

// drain claims, renders, sends and records until no row is due. With a
// non-zero since it also stops after a batch holding a row created after
// since or one it has handled already (due again after a failure), so
// that a Flush ends even while other processes keep adding rows.
//
// Three stages run at once: this goroutine claims and renders batches,
// w.conns goroutines send, and one records outcomes (marking a group of
// rows in one transaction while the next group is being sent); a fourth
// renews the leases of the rows held.
func (w *Worker) drain(ctx context.Context, since time.Time) (int, error) {
	p := &pass{w: w, held: map[int64]*job{}}
	jobs := make(chan *job, claimBatch)
	done := make(chan *job, claimBatch)

	var senders sync.WaitGroup
	for range w.conns {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for j := range jobs {
				p.sendOne(ctx, j)
				done <- j
			}
		}()
	}
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		p.recordLoop(done)
	}()
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		p.renewLoop(renewCtx)
	}()

	err := p.claimLoop(ctx, since, jobs)
	close(jobs)
	senders.Wait()
	close(done)
	<-marked
	stopRenew()
	<-renewed
	sent := int(p.sent.Load())
	if err == nil {
		err = p.markErr
	}
	return sent, err
}

// claimLoop claims and renders batches and hands their jobs to the
// senders until nothing is due (or since says stop, or ctx ends, or the
// transport is down).
func (p *pass) claimLoop(ctx context.Context, since time.Time, jobs chan<- *job) error {
	w := p.w
	var seen map[int64]bool
	if !since.IsZero() {
		seen = map[int64]bool{}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.down.Load() {
			return nil
		}
		claimed := time.Now()
		rows, err := w.st.ClaimOutbox(ctx, claimed, claimBatch, w.lease)
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		batch := p.prepare(ctx, rows, claimed.Add(w.lease))
		more := true
		for _, j := range batch {
			if seen != nil {
				if seen[j.row.ID] || j.row.Created.After(since) {
					more = false
				}
				seen[j.row.ID] = true
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				// Not started: the senders put it back.
				j.skip = true
				jobs <- j
			}
		}
		if !more {
			return nil
		}
	}
}

// prepare holds and renders a claimed batch. Rendering reads through a
// batchReader; the tokens it needs are created in one transaction before
// any mail goes out. A failure to read or write the batch's data fails
// every row of it (temporarily); a row that cannot be rendered fails
// alone.
func (p *pass) prepare(ctx context.Context, rows []store.Outbox, leaseEnd time.Time) []*job {
	w := p.w
	batch := make([]*job, len(rows))
	p.markMu.Lock()
	for i := range rows {
		j := &job{row: rows[i]}
		j.leaseEnd.Store(leaseEnd.UnixNano())
		batch[i] = j
		p.held[j.row.ID] = j
	}
	p.markMu.Unlock()

	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, w.wait+time.Minute)
	defer cancel()
	fail := func(err error) []*job {
		for _, j := range batch {
			j.err = err
		}
		return batch
	}
	key, err := w.tokenKey()
	if err != nil {
		return fail(fmt.Errorf("notify: %w", err))
	}
	br := newBatchReader(w.st, &w.known)
	if err := br.prefetch(rctx, rows, key); err != nil {
		return fail(fmt.Errorf("notify: read the batch: %w", err))
	}
	rd := &renderer{r: br, cfg: w.cfg, key: func() ([]byte, error) { return key, nil }}
	for _, j := range batch {
		j.mail, j.err = p.render(rctx, rd, &j.row)
	}
	if err := br.flush(rctx); err != nil {
		return fail(fmt.Errorf("notify: store tokens: %w", err))
	}
	return batch
}

// render renders one row, turning a panic into an error (temporary: a
// later trackerd may have the fix).
func (p *pass) render(ctx context.Context, rd *renderer, row *store.Outbox) (m *Mail, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.w.log.Error("panic while rendering outbox row", "outbox_id", row.ID, "panic", r, "stack", string(debug.Stack()))
			m, err = nil, fmt.Errorf("notify: panic: %v", r)
		}
	}()
	return rd.render(ctx, row)
}

// sendOne sends j's mail unless it failed to render, the pass is
// stopping (ctx ended, transport down) or its lease cannot be trusted
// any more (renewals failing); those are put back untried.
func (p *pass) sendOne(ctx context.Context, j *job) {
	w := p.w
	switch {
	case j.skip || j.err != nil:
		return
	case ctx.Err() != nil:
		j.skip = true
		return
	case p.down.Load():
		j.skip, j.deferTo = true, time.Unix(0, p.downNext.Load())
		return
	case time.Until(time.Unix(0, j.leaseEnd.Load())) < w.lease/4:
		// Renewals have failed (the store is unreachable): another
		// worker may take the row soon, so do not send it.
		j.skip = true
		return
	}
	start := time.Now()
	j.err = p.sendMail(ctx, j)
	j.took = time.Since(start)
	metrics.SendSeconds.Observe(j.took.Seconds())
	if j.err != nil && unavailable(j.err) && !p.down.Swap(true) {
		next := time.Now().Add(w.backoff(j.row.Attempts + 1))
		p.downNext.Store(next.UnixNano())
		w.log.Warn("outgoing transport unavailable; pausing the outbox", "err", j.err, "until", next.UTC().Format(time.RFC3339))
	}
}

// sendMail hands j's mail to the Sender, within outgoing.timeout for each
// of its steps (bounded as a whole by a few of them); a panic becomes an
// error.
func (p *pass) sendMail(ctx context.Context, j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.w.log.Error("panic while sending outbox row", "outbox_id", j.row.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("notify: panic: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 6*p.w.wait)
	defer cancel()
	if err := p.w.send.Send(ctx, j.mail); err != nil {
		return fmt.Errorf("notify: send outbox %d: %w", j.row.ID, err)
	}
	return nil
}

// recordLoop records outcomes as they come: it waits for one, takes every
// other one already there, records them in one transaction, and repeats.
func (p *pass) recordLoop(done <-chan *job) {
	group := make([]*job, 0, markBatch)
	var last time.Time
	for j := range done {
		if d := recordEvery - time.Since(last); d > 0 {
			time.Sleep(d) // let outcomes gather
		}
		last = time.Now()
		group = append(group[:0], j)
	more:
		for len(group) < markBatch {
			select {
			case j, ok := <-done:
				if !ok {
					break more
				}
				group = append(group, j)
			default:
				break more
			}
		}
		p.record(group)
	}
}

// record writes the outcomes of group in one transaction: sent rows
// marked, untried rows put back, failed ones scheduled for a retry or
// given up. If the transaction fails, the rows stay claimed until their
// leases end (sent ones are then sent again).
func (p *pass) record(group []*job) {
	w := p.w
	p.markMu.Lock()
	defer p.markMu.Unlock()
	for _, j := range group {
		delete(p.held, j.row.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), markTimeout)
	defer cancel()
	type outcome struct {
		j        *job
		result   string // "sent", "retry", "failed", "" (put back)
		next     time.Time
		text     string
		attempts int
	}
	outs := make([]outcome, len(group))
	var sentIDs []int64
	for i, j := range group {
		o := outcome{j: j, attempts: j.row.Attempts + 1}
		switch {
		case j.skip:
		case j.err == nil:
			o.result = "sent"
			sentIDs = append(sentIDs, j.row.ID)
		default:
			o.text = j.err.Error()
			if len(o.text) > maxErrorText {
				o.text = o.text[:maxErrorText]
			}
			if Permanent(j.err) || o.attempts >= w.cfg.Outgoing.MaxAttempts {
				o.result = "failed"
			} else {
				o.result, o.next = "retry", time.Now().Add(w.backoff(o.attempts))
			}
		}
		outs[i] = o
	}
	err := w.st.Tx(ctx, func(tx *store.Tx) error {
		if len(sentIDs) > 0 {
			if err := tx.MarkSentMany(ctx, sentIDs, time.Time{}); err != nil {
				return err
			}
		}
		for _, o := range outs {
			var err error
			switch o.result {
			case "":
				due := o.j.deferTo
				if due.IsZero() {
					due = time.Now()
				}
				_, err = tx.ReleaseOutbox(ctx, []int64{o.j.row.ID}, due)
			case "failed":
				err = tx.MarkFailed(ctx, o.j.row.ID, o.text)
			case "retry":
				err = tx.MarkRetry(ctx, o.j.row.ID, o.next, o.text)
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) { // dropped meanwhile
				return err
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("notify: record the outcome of %d rows (sent ones will be sent again): %w", len(group), err)
		w.log.Error("outbox record failed", "err", err)
		if p.markErr == nil {
			p.markErr = err
		}
		return
	}
	for _, o := range outs {
		if o.result == "" {
			continue
		}
		metrics.NotificationsSent.WithLabelValues(o.result).Inc()
		r := &o.j.row
		switch o.result {
		case "sent":
			p.sent.Add(1)
			w.log.Info("notified", "outbox_id", r.ID, "issue_id", r.IssueID, "recipient", r.Recipient, "kind", r.Kind)
		case "failed":
			w.log.Info("notify_failed", "outbox_id", r.ID, "issue_id", r.IssueID, "recipient", r.Recipient, "kind", r.Kind,
				"attempts", o.attempts, "permanent", Permanent(o.j.err), "err", o.text)
		case "retry":
			w.log.Info("notify_deferred", "outbox_id", r.ID, "issue_id", r.IssueID, "recipient", r.Recipient, "kind", r.Kind,
				"attempts", o.attempts, "next_attempt", o.next.UTC().Format(time.RFC3339), "err", o.text)
		}
	}
}

// renewLoop extends the leases of the rows held, every third of a lease,
// until ctx ends.
func (p *pass) renewLoop(ctx context.Context) {
	w := p.w
	t := time.NewTicker(w.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.markMu.Lock()
		ids := make([]int64, 0, len(p.held))
		for id := range p.held {
			ids = append(ids, id)
		}
		if len(ids) > 0 {
			until := time.Now().Add(w.lease)
			rctx, cancel := context.WithTimeout(ctx, markTimeout)
			_, err := w.st.RenewOutbox(rctx, ids, until)
			cancel()
			if err != nil {
				w.log.Warn("could not renew outbox leases", "rows", len(ids), "err", err)
			} else {
				for _, id := range ids {
					p.held[id].leaseEnd.Store(until.UnixNano())
				}
			}
		}
		p.markMu.Unlock()
	}
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

// backoff is the delay before attempt attempts+1 (see backoffDelay).
func (w *Worker) backoff(attempts int) time.Duration { return backoffDelay(w.base, attempts) }

// backoffDelay is base · 2^(attempts-1), capped at backoffMax, with ±25%
// jitter so rows that failed together do not come back together.
func backoffDelay(base time.Duration, attempts int) time.Duration {
	d := backoffMax
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 20 {
		d = min(base<<(attempts-1), backoffMax)
	}
	return d*3/4 + rand.N(max(d/2, 1))
}
