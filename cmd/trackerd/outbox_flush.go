package main

import (
	"context"

	"github.com/trackerd/trackerd/notify"
)

// flushOutbox sends what is due in the outbox (what the command just
// queued: notifications, error replies; and anything else due), since no
// serve may be running to do it. It is best effort: the rows are
// committed, so whatever is not sent now stays pending for the notifier
// of serve or the next command. It returns how many mails were sent.
func (a *app) flushOutbox(ctx context.Context, e *mailEnv) int {
	s, err := notify.NewSender(e.cfg)
	if err != nil {
		e.log.Warn("outbox not flushed", "err", err)
		return 0
	}
	defer notify.CloseSender(s)
	sent, err := notify.New(e.st, e.cfg, s, e.log).Flush(ctx)
	if err != nil {
		e.log.Warn("outbox not flushed", "err", err)
	}
	return sent
}
