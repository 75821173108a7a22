package main

import (
	"context"
	"sync"

	"github.com/trackerd/trackerd/mailgw/poll"
)

// pollComponents returns the serve components for the [[poll]] mailboxes:
// one per mailbox, all sharing one store.Locker (one PostgreSQL
// connection holds every mailbox lock of the process). A poller's failures
// are logged and retried inside its Run, which returns only at shutdown;
// the Locker is closed when the last poller has stopped.
func pollComponents(env *serveEnv) ([]component, error) {
	if len(env.cfg.Poll) == 0 {
		return nil, nil
	}
	pollers := make([]*poll.Poller, 0, len(env.cfg.Poll))
	locker := env.st.NewLocker()
	for _, pc := range env.cfg.Poll {
		mb, err := poll.FromConfig(pc)
		if err != nil {
			locker.Close()
			return nil, err
		}
		pollers = append(pollers, poll.New(mb, env.gw, env.st, locker, poll.Options{
			Log:             env.log,
			MaxMessageBytes: env.cfg.SMTP.MaxMessageBytes,
		}))
	}
	var running sync.WaitGroup
	running.Add(len(pollers))
	go func() {
		running.Wait()
		locker.Close()
	}()
	comps := make([]component, len(pollers))
	for i, p := range pollers {
		comps[i] = component{name: "poll " + p.Mailbox().Name, run: func(ctx context.Context) error {
			defer running.Done()
			return p.Run(ctx)
		}}
	}
	return comps, nil
}
