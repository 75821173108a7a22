package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lib/pq"
)

// OutboxChannel is the PostgreSQL notification channel on which the
// database announces outbox rows that became due (migration 0004's
// trigger).
const OutboxChannel = "trackerd_outbox"

// listenPing is how often ListenOutbox checks that its connection is
// alive; lib/pq notices a dead connection only when it next uses it.
const listenPing = 60 * time.Second

// ListenOutbox waits for the database's announcements of new or newly due
// outbox rows (PostgreSQL LISTEN on OutboxChannel) and calls wake for each,
// so that a notifier wakes as soon as any trackerd sharing the database
// commits mail to send. It also calls wake each time the connection is
// (re)established, since announcements made while it was down are lost:
// the caller should then look for due rows. It reconnects by itself (after
// 1 s, backing off to 1 min) and returns only when ctx is cancelled (nil)
// or when dsn is unusable.
//
// dsn is the PostgreSQL DSN the Store was opened with (Options.DSN); as in
// Open, sslmode=disable applies when it names no sslmode and PGSSLMODE is
// unset. It must not be called for SQLite, which has no such mechanism
// (one process kicks its own notifier; others poll).
func ListenOutbox(ctx context.Context, dsn string, wake func()) error {
	dsn, err := listenDSN(dsn)
	if err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	events := make(chan pq.ListenerEventType, 8)
	l := pq.NewListener(dsn, time.Second, time.Minute, func(ev pq.ListenerEventType, err error) {
		select {
		case events <- ev:
		default:
		}
	})
	defer l.Close()
	// Listen blocks until the server answers, which with the database down
	// may be long: run it aside so that ctx still stops us.
	listened := make(chan error, 1)
	go func() { listened <- l.Listen(OutboxChannel) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-listened:
		if err != nil {
			return fmt.Errorf("store: listen %s: %w", OutboxChannel, err)
		}
	}
	wake() // anything committed before we listened
	ping := time.NewTicker(listenPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.Notify:
			// A notification, or nil after a reconnection: either way,
			// look for due rows.
			wake()
		case ev := <-events:
			if ev == pq.ListenerEventReconnected {
				wake()
			}
		case <-ping.C:
			go func() { _ = l.Ping() }() // a failure makes the listener reconnect
		}
	}
}

// ListenApplicationName is the application_name of ListenOutbox's
// connection, so that it can be told apart in pg_stat_activity.
const ListenApplicationName = "trackerd-listen"

// listenDSN applies Open's sslmode default to dsn (URL or key=value) and
// names the connection ListenApplicationName.
func listenDSN(dsn string) (string, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return "", err
	}
	set := map[string]string{"application_name": ListenApplicationName}
	if cfg.SSLMode == "" && os.Getenv("PGSSLMODE") == "" {
		set["sslmode"] = "disable"
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		q := u.Query()
		for k, v := range set {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	for _, k := range []string{"sslmode", "application_name"} {
		if v, ok := set[k]; ok {
			dsn += " " + k + "=" + v
		}
	}
	return strings.TrimSpace(dsn), nil
}
