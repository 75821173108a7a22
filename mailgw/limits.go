package mailgw

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Abuse controls (issue 8): mailgw.max_new_issues_per_sender_hour, the
// loop breaker (mailgw.loop_max_mails within mailgw.loop_window) and the
// listener's smtp.max_connections_per_ip_minute. A mail over a limit is
// quarantined: archived with the status "quarantined" and the reason,
// nothing filed, nobody answered (an answer would feed the loop); the
// SMTP client is told 250, as the mail is kept. "trackerd inbound
// reprocess" releases it: Reprocess files a quarantined mail without
// these limits.

// quarantine is an over-limit mail: like a rejection it leaves nothing
// filed (the savepoint is rolled back), but nobody is answered.
type quarantine struct{ reason string }

func (q *quarantine) Error() string { return q.reason }

// checkLimits is called once the author and the issue are known: a new
// issue counts against the sender's hourly limit, a mail to an issue
// against the loop breaker, whatever its headers say. A released mail
// (Reprocess of a quarantined one) passes, and so does import: an
// archive is the operator's, and all of it is filed "now".
func (f *filing) checkLimits(ctx context.Context) error {
	if f.p.release || f.m.Source == "import" {
		return nil
	}
	cfg := &f.g.cfg.MailGW
	if f.issue == nil {
		if cfg.MaxNewIssuesPerSenderHour == 0 {
			return nil // no limit
		}
		n, err := f.tx.IssuesCreatedSince(ctx, f.author.ID, f.now.Add(-time.Hour), cfg.MaxNewIssuesPerSenderHour)
		if err != nil {
			return err
		}
		if n >= cfg.MaxNewIssuesPerSenderHour {
			return &quarantine{reason: fmt.Sprintf("rate limit: %s opened %d issues in the last hour (mailgw.max_new_issues_per_sender_hour = %d); release with trackerd inbound reprocess",
				f.author.Address, n, cfg.MaxNewIssuesPerSenderHour)}
		}
		return nil
	}
	window := time.Duration(cfg.LoopWindow)
	n, err := f.tx.MessagesSince(ctx, f.issue.ID, f.author.ID, f.now.Add(-window), cfg.LoopMaxMails)
	if err != nil {
		return err
	}
	if n >= cfg.LoopMaxMails {
		return &quarantine{reason: fmt.Sprintf("loop breaker: %s sent %d messages to issue %d within %s (mailgw.loop_max_mails = %d); release with trackerd inbound reprocess",
			f.author.Address, n, f.issue.ID, window, cfg.LoopMaxMails)}
	}
	return nil
}

// connRate is smtp.max_connections_per_ip_minute: the connections each
// IP address opened within the last minute (a sliding window). It is
// safe for concurrent use.
type connRate struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	seen  map[string][]time.Time // per IP, oldest first, at most limit
	calls int
}

func newConnRate(limit int) *connRate {
	return &connRate{limit: limit, window: time.Minute, seen: map[string][]time.Time{}}
}

// allow counts a connection from ip at now, unless ip has opened limit
// connections within the window: then it reports false.
func (r *connRate) allow(ip string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls++; r.calls%1024 == 0 {
		r.sweep(now)
	}
	ts := r.seen[ip]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= r.window {
		i++
	}
	ts = ts[i:]
	if len(ts) >= r.limit {
		r.seen[ip] = ts
		return false
	}
	r.seen[ip] = append(ts, now)
	return true
}

// sweep forgets the addresses not seen within the window, so that the
// map does not grow with every address ever seen.
func (r *connRate) sweep(now time.Time) {
	for ip, ts := range r.seen {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= r.window {
			delete(r.seen, ip)
		}
	}
}
