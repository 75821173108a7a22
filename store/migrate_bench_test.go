package store_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// BenchmarkMigrateWords times migration 0012 on PostgreSQL, which rebuilds
// every issue's search row in Go, over TRACKERD_BENCH_ISSUES issues
// (100,000) with ten messages each of 40 words drawn from 8,000:
//
//	TRACKERD_BENCH_SCALE=1 scripts/with-postgres.sh go test ./store -run '^$' -bench MigrateWords -benchtime 1x -timeout 1h
func BenchmarkMigrateWords(b *testing.B) {
	if os.Getenv("TRACKERD_BENCH_SCALE") == "" {
		b.Skip("set TRACKERD_BENCH_SCALE=1 to time migration 0012 on 100,000 issues and 1,000,000 messages")
	}
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("TRACKERD_BENCH_ISSUES")); err == nil {
		n = v
	}
	for b.Loop() {
		o := storetest.Options(b, store.DriverPostgres)
		restore := store.SetMigrateLimit(11)
		s := storetest.Open(b, o)
		restore()
		ctx := b.Context()
		for _, q := range []string{
			`INSERT INTO users (id, username, username_lower, created) VALUES (1, 'a', 'a', now())`,
			// Migration 0012 empties issue_words first: version 11's
			// triggers need not fill it here.
			`ALTER TABLE issues DISABLE TRIGGER USER`, `ALTER TABLE messages DISABLE TRIGGER USER`,
			`INSERT INTO issues (id, title, status, priority, created, activity)
				SELECT g, 'issue ' || g, 'unread', 'bug', now(), now() FROM generate_series(1, $1::int) g`,
			// 40 words of 32 characters.
			`WITH w AS MATERIALIZED (SELECT array_agg(md5(g::text)) AS a FROM generate_series(1, 8000) g)
			INSERT INTO messages (issue_id, author_id, date, message_id, content, full_text)
				SELECT 1 + (g - 1) / 10, 1, now(), '<' || g || '@x>', array_to_string(w.a[1 + (g::bigint * 7919) % 7960:40 + (g::bigint * 7919) % 7960], ' '), ''
				FROM w, generate_series(1, $1::int * 10) g`,
			`ALTER TABLE issues ENABLE TRIGGER USER`, `ALTER TABLE messages ENABLE TRIGGER USER`,
		} {
			args := []any{}
			if strings.Contains(q, "$1") {
				args = append(args, n)
			}
			if err := store.ExecRaw(ctx, s, q, args...); err != nil {
				b.Fatalf("%.60s: %v", q, err)
			}
		}
		s.Close()
		start := time.Now()
		s = storetest.Open(b, o)
		b.ReportMetric(time.Since(start).Seconds(), "s-migrate")
		got, err := s.ListIssues(ctx, store.IssueFilter{Query: "issue"})
		if err != nil || len(got) != n {
			b.Fatalf("after migrating, %d issues hold the word issue (%v), want %d", len(got), err, n)
		}
	}
}
