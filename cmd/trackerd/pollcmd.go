package main

import (
	"context"
	"errors"
)

// cmdPoll makes one pass over a configured mailbox or a URL.
func cmdPoll(ctx context.Context, a *app, args []string) error {
	return errors.New("poll: not built yet")
}
