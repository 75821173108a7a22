package poll_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/metrics"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testdovecot"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/mailgw/poll"
	"github.com/trackerd/trackerd/store"
)

// run starts p.Run and returns a stop that cancels it and checks that it
// returned nil promptly.
func run(t *testing.T, p *poll.Poller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of the cancel")
		}
	}
}

// TestRunIdle: with idle = true, mails put into the mailbox while the
// poller waits arrive within seconds (the refresh is ten minutes: only
// IDLE can bring them), on the in-memory server and on Dovecot.
func TestRunIdle(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := startMem(t, nil)
		d := testdovecot.Start(t, testdovecot.Options{})
		e := newEnv(t, st)
		mem := e.poller(t, config.Poll{Name: "mem", URL: srv.url("imap", srv.Addr, ""), Password: memPassword, Idle: true}, poll.Options{})
		dove := e.poller(t, config.Poll{Name: "dovecot", URL: "imaps://tracker@" + d.IMAPS, Password: "secret", Idle: true}, poll.Options{RootCAs: d.Roots})
		defer run(t, mem)()
		defer run(t, dove)()
		// Both have made their first pass and are waiting.
		waitFor(t, 30*time.Second, "both pollers idle", func() bool { return e.log.Count(`msg="poll pass done"`) >= 2 })

		c := srv.client(t)
		mails := testmail.Fresh(20, "idle")
		testdovecot.Append(t, c, "INBOX", mails[:5]...)
		d.Append(t, "tracker", "INBOX", mails[5:10]...)
		waitFor(t, 30*time.Second, "10 mails filed through IDLE", func() bool { m, _ := e.counts(t); return m == 10 })
		testdovecot.Append(t, c, "INBOX", mails[10:15]...)
		d.Append(t, "tracker", "INBOX", mails[15:]...)
		waitFor(t, 30*time.Second, "20 mails filed through IDLE", func() bool { m, _ := e.counts(t); return m == 20 })
		e.wantCounts(t, 20, 20)
		if total, _ := testdovecot.Count(t, c, "INBOX"); total != 0 {
			t.Errorf("in-memory INBOX holds %d mails, want 0", total)
		}
		if total, _ := d.Count(t, "tracker", "INBOX"); total != 0 {
			t.Errorf("Dovecot INBOX holds %d mails, want 0", total)
		}
	})
}

// TestRunCron: on a schedule, IMAP and POP3 mails arrive at the next
// scheduled pass ("@every 1s" here; serve takes any robfig/cron spec).
func TestRunCron(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		d := testdovecot.Start(t, testdovecot.Options{Users: map[string]string{"imapuser": "secret", "popuser": "secret"}})
		e := newEnv(t, st)
		imapP := e.poller(t, config.Poll{Name: "imap", URL: "imap://imapuser@" + d.IMAP, Password: "secret", Schedule: "@every 1s"}, poll.Options{})
		popP := e.poller(t, config.Poll{Name: "pop3", URL: "pop3s://popuser@" + d.POP3S, Password: "secret", Schedule: "@every 1s"}, poll.Options{RootCAs: d.Roots})
		defer run(t, imapP)()
		defer run(t, popP)()
		mails := testmail.Fresh(20, "cron")
		d.Append(t, "imapuser", "INBOX", mails[:10]...)
		d.Append(t, "popuser", "INBOX", mails[10:]...)
		waitFor(t, 60*time.Second, "20 mails filed on schedule", func() bool { m, _ := e.counts(t); return m == 20 })
		e.wantCounts(t, 20, 20)
	})
}

// TestRunFailures: a wrong password, an unreachable server and an
// untrusted certificate each give a clear log line and are retried with
// growing waits; Run keeps going (a healthy mailbox beside them is
// polled) and returns nil when cancelled.
func TestRunFailures(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := startMem(t, nil)
		e := newEnv(t, st)
		fast := poll.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Timeout: 5 * time.Second}
		bad := []struct{ name, url, password, want string }{
			// (Another user: the good mailbox must not share its lock.)
			{"password", "imap://someone@" + srv.Addr, "wrong", "log in as someone"},
			{"unreachable", "imap://tracker@" + testenv.FreePort(t), "secret", "connection refused"},
			{"untrusted", srv.url("imaps", srv.TLS, ""), memPassword, "certificate"},
		}
		errorsBefore := map[string]float64{}
		for _, b := range bad {
			for _, idle := range []bool{true, false} {
				name := b.name + map[bool]string{true: "-idle", false: "-cron"}[idle]
				errorsBefore[name] = testutil.ToFloat64(metrics.PollRuns.WithLabelValues(name, "error"))
				p := e.poller(t, config.Poll{Name: name, URL: b.url, Password: b.password, Idle: idle, Schedule: "@every 1s"}, fast)
				defer run(t, p)()
			}
		}
		// go-imap's in-memory server does not announce, when IDLE starts,
		// mail appended between the end of a pass and the IDLE (RFC 2177
		// does not require it): the append below can land there, and the
		// refresh then brings the mail instead of a 10-minute wait.
		goodOpts := fast
		goodOpts.IdleRefresh = time.Second
		good := e.poller(t, config.Poll{Name: "good", URL: srv.url("imap", srv.Addr, ""), Password: memPassword, Idle: true}, goodOpts)
		defer run(t, good)()
		testdovecot.Append(t, srv.client(t), "INBOX", testmail.Fresh(5, "good")...)
		waitFor(t, 30*time.Second, "the healthy mailbox's 5 mails filed", func() bool { m, _ := e.counts(t); return m == 5 })

		for _, b := range bad {
			for _, mode := range []string{"-idle", "-cron"} {
				name := b.name + mode
				waitFor(t, 30*time.Second, name+" failing three times", func() bool {
					return countFailures(e.log.String(), name) >= 3
				})
				lines := failureLines(e.log.String(), name)
				if !strings.Contains(lines[0], b.want) || !strings.Contains(lines[0], "retry_in=") {
					t.Errorf("%s: log line %q does not say %q and when it retries", name, lines[0], b.want)
				}
				if got := testutil.ToFloat64(metrics.PollRuns.WithLabelValues(name, "error")) - errorsBefore[name]; got < 3 {
					t.Errorf("%s: %v error passes counted, want at least 3", name, got)
				}
			}
		}
	})
}

func failureLines(log, name string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="poll failed"`) && strings.Contains(l, "mailbox="+name+" ") {
			out = append(out, l)
		}
	}
	return out
}

func countFailures(log, name string) int { return len(failureLines(log, name)) }
