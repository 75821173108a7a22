package mailgw

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trackerd/trackerd/store"
)

// Group commit. Every session hands its parsed mail to the committer and
// waits; a worker takes the mails that are waiting (up to batchMax, and
// after the first one it waits up to batchWait for more), files them in
// one transaction through Gateway.deliverParsed — one savepoint per mail
// — and answers each session once the transaction has committed. Under
// load the mails that arrive while one batch commits form the next one,
// so one commit (one fsync) is shared by many mails; a lone mail waits
// at most batchWait.
const (
	batchMax  = 64
	batchWait = 500 * time.Microsecond
)

// committerWorkers is how many batches are filed at once. SQLite has one
// writer: one. PostgreSQL runs transactions side by side, and a batch
// spends most of its time waiting for round trips to the server, so half
// the connection pool (store.max_open_conns, 10 by default), leaving the
// rest to RCPT lookups, the notifier, the pollers and the web view;
// between 2 and 8.
func committerWorkers(driver string, maxOpenConns int) int {
	if driver != store.DriverPostgres {
		return 1
	}
	if maxOpenConns <= 0 {
		maxOpenConns = 10 // store's default for PostgreSQL
	}
	return min(max(maxOpenConns/2, 2), 8)
}

type committer struct {
	gw      *Gateway
	log     *slog.Logger
	workers int
	reqs    chan *commitReq // unbuffered: a request is taken only by a worker that will file it

	// waiting counts the calls of file not yet answered; beforeFlush,
	// when set, is called with each batch's size before it is filed.
	// Both are for tests.
	waiting     atomic.Int64
	beforeFlush func(n int)
}

// commitReq is one mail waiting to be filed.
type commitReq struct {
	m     *Mail
	p     *parsed
	start time.Time

	res  Result
	err  error
	done chan struct{}
}

func newCommitter(gw *Gateway, log *slog.Logger) *committer {
	return &committer{gw: gw, log: log, workers: committerWorkers(gw.st.Driver(), gw.cfg.Store.MaxOpenConns), reqs: make(chan *commitReq)}
}

// file files one parsed mail in the next batch and returns when that
// batch has committed (or failed: then err is set and nothing of the mail
// was stored). run must be running, and must not stop before every call
// of file has returned.
func (c *committer) file(ctx context.Context, m *Mail, p *parsed, start time.Time) (Result, error) {
	r := &commitReq{m: m, p: p, start: start, done: make(chan struct{})}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	<-r.done
	return r.res, r.err
}

// run runs the workers until stop is closed.
func (c *committer) run(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() { c.work(ctx, stop) })
	}
	wg.Wait()
}

func (c *committer) work(ctx context.Context, stop <-chan struct{}) {
	batch := make([]*commitReq, 0, batchMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch = batch[:0]
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		case <-stop:
			return
		}
		// What is waiting now joins at once; then wait a moment for more.
		timer.Reset(batchWait)
	collect:
		for len(batch) < batchMax {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
				continue
			default:
			}
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		c.flush(ctx, batch)
	}
}

// flush files one batch and answers its sessions. When the shared
// transaction fails, each mail is tried again on its own, so that a mail
// that trips the store (or a deadlock between two PostgreSQL batches)
// fails alone.
func (c *committer) flush(ctx context.Context, batch []*commitReq) {
	answered := 0
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("smtp: panic filing mail", "panic", fmt.Sprint(p), "mails", len(batch))
			for _, r := range batch[answered:] {
				r.err = fmt.Errorf("mailgw: panic filing mail: %v", p)
				close(r.done)
			}
		}
	}()
	if c.beforeFlush != nil {
		c.beforeFlush(len(batch))
	}
	ms := make([]Mail, len(batch))
	ps := make([]parsed, len(batch))
	for i, r := range batch {
		ms[i], ps[i] = *r.m, *r.p
	}
	rs, err := c.gw.deliverParsed(ctx, ms, ps, batch[0].start)
	if err == nil {
		for _, r := range batch {
			r.res = rs[answered]
			answered++
			close(r.done)
		}
		return
	}
	if len(batch) > 1 {
		c.log.Warn("smtp: group commit failed, filing its mails one by one", "mails", len(batch), "error", err.Error())
	}
	for _, r := range batch {
		if len(batch) == 1 {
			r.err = err
		} else if rs, err := c.gw.deliverParsed(ctx, []Mail{*r.m}, []parsed{*r.p}, r.start); err != nil {
			r.err = err
		} else {
			r.res = rs[0]
		}
		answered++
		close(r.done)
	}
}
