// Package metrics holds the process's Prometheus collectors, so that the
// packages doing the work (mailgw, notify, the pollers, the listener)
// count into them and the web view's /metrics serves them. Counts that the
// store already knows across every instance (outbox rows by status) are
// read from the store at scrape time by the web view instead.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Latency buckets in seconds, from 1 ms to 30 s.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

var (
	// MailsReceived counts mails handed to the gateway, by source
	// ("smtp", "lmtp", "deliver", "import", "imap", "pop3").
	MailsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trackerd_mails_received_total",
		Help: "Mails handed to the gateway, by source.",
	}, []string{"source"})
	// MailsProcessed counts what became of committed mails, by source and
	// inbound status (filed, ignored, rejected, quarantined).
	MailsProcessed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trackerd_mails_processed_total",
		Help: "Mails committed by the gateway, by source and status (filed, ignored, rejected, quarantined).",
	}, []string{"source", "status"})
	// IngestErrors counts batches that failed with a temporary fault of
	// ours (nothing stored, the sender told to retry), by source.
	IngestErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trackerd_ingest_errors_total",
		Help: "Mails not stored because of a temporary fault (store down, disk full), by source.",
	}, []string{"source"})
	// IngestSeconds is the time from a mail's hand-over to its commit.
	IngestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trackerd_ingest_seconds",
		Help:    "Time from hand-over to the gateway until the mail's transaction committed, by source.",
		Buckets: latencyBuckets,
	}, []string{"source"})
	// NotificationsSent counts send attempts by result ("sent", "retry",
	// "failed").
	NotificationsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trackerd_notifications_total",
		Help: "Outbox send attempts by result (sent, retry, failed).",
	}, []string{"result"})
	// SendSeconds is the time one mail's hand-over to the relay or the
	// spool took.
	SendSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trackerd_send_seconds",
		Help:    "Time to hand one notification to the relay or the spool.",
		Buckets: latencyBuckets,
	})
	// PollRuns counts poller passes by mailbox name and result ("ok",
	// "error").
	PollRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trackerd_poll_runs_total",
		Help: "Mailbox poll passes by mailbox and result (ok, error).",
	}, []string{"mailbox", "result"})
	// SMTPSessions counts listener connections by outcome ("accepted",
	// "refused": over a connection limit or draining).
	SMTPSessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trackerd_smtp_connections_total",
		Help: "SMTP/LMTP listener connections by outcome (accepted, refused).",
	}, []string{"outcome"})
)

// Registry holds every collector above plus the Go runtime and process
// collectors. The web view serves it; more collectors may be registered
// with Registry.MustRegister.
var Registry = prometheus.NewRegistry()

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		MailsReceived, MailsProcessed, IngestErrors, IngestSeconds,
		NotificationsSent, SendSeconds, PollRuns, SMTPSessions,
	)
}

// Source returns the metrics label for a gateway source: "imap:NAME" and
// "pop3:NAME" become "imap" and "pop3", so a label's values stay few.
func Source(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i]
		}
	}
	return s
}
