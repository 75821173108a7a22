package web

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trackerd/trackerd/store"
)

// storeCollector exports what the store knows across every trackerd
// process sharing it, read at scrape time: outbox and inbound rows by
// status, row counts, and this process's connection pool.
type storeCollector struct {
	st *store.Store

	up, outbox, inbound, issues, messages, users *prometheus.Desc
	open, inUse, idle, waitCount, waitSeconds    *prometheus.Desc
}

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 10 * time.Second

// Statuses always exported, so that a dashboard sees a zero and not a gap.
var (
	outboxStatuses  = []string{store.OutboxPending, store.OutboxSent, store.OutboxFailed}
	inboundStatuses = []string{store.InboundReceived, store.InboundFiled, store.InboundIgnored, store.InboundRejected, store.InboundQuarantined, store.InboundFailed}
)

func newStoreCollector(st *store.Store) *storeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("trackerd_"+name, help, labels, nil)
	}
	return &storeCollector{
		st:          st,
		up:          d("store_up", "1 when the store answered this scrape's queries, else 0."),
		outbox:      d("outbox_mails", "Outbox rows by status (pending, sent, failed), across every process sharing the store.", "status"),
		inbound:     d("inbound_mails", "Archived incoming mails by status, across every process sharing the store.", "status"),
		issues:      d("issues", "Issues in the store."),
		messages:    d("messages", "Messages in the store."),
		users:       d("users", "Users in the store."),
		open:        d("store_open_connections", "Open connections of this process's store pool."),
		inUse:       d("store_in_use_connections", "Connections of this process's store pool in use."),
		idle:        d("store_idle_connections", "Idle connections of this process's store pool."),
		waitCount:   d("store_wait_total", "Times this process waited for a store connection."),
		waitSeconds: d("store_wait_seconds_total", "Time this process waited for store connections."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.outbox, c.inbound, c.issues, c.messages, c.users, c.open, c.inUse, c.idle, c.waitCount, c.waitSeconds} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s, err := c.st.Stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.up, 1)
	for _, st := range outboxStatuses {
		gauge(c.outbox, float64(s.Outbox[st]), st)
	}
	for st, n := range s.Outbox {
		if !contains(outboxStatuses, st) {
			gauge(c.outbox, float64(n), st)
		}
	}
	for _, st := range inboundStatuses {
		gauge(c.inbound, float64(s.Inbound[st]), st)
	}
	for st, n := range s.Inbound {
		if !contains(inboundStatuses, st) {
			gauge(c.inbound, float64(n), st)
		}
	}
	gauge(c.issues, float64(s.Issues))
	gauge(c.messages, float64(s.Messages))
	gauge(c.users, float64(s.Users))
	gauge(c.open, float64(s.OpenConnections))
	gauge(c.inUse, float64(s.InUse))
	gauge(c.idle, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(c.waitCount, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, s.WaitDuration.Seconds())
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
