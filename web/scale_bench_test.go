package web

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// BenchmarkScale measures the web view on a big tracker: 100,000 issues
// and 1,000,000 messages (TRACKERD_BENCH_ISSUES and
// TRACKERD_BENCH_MESSAGES change the size), generated straight into the
// store in bulk, then requests one at a time through HTTP, reporting the
// median and 99th percentile latency of each kind of page.
//
// It runs only when asked: TRACKERD_BENCH_SCALE=1 (generation takes
// minutes). TRACKERD_BENCH_DIR keeps the SQLite database between runs
// and TRACKERD_BENCH_PG_SCHEMA names a PostgreSQL schema to keep (each
// is reused when its size matches). One request per iteration:
//
//	TRACKERD_BENCH_SCALE=1 TRACKERD_BENCH_DIR=/tmp/trackerd-bench \
//	  scripts/with-postgres.sh go test ./web -run '^$' -bench Scale -benchtime 2000x -timeout 2h
func BenchmarkScale(b *testing.B) {
	if os.Getenv("TRACKERD_BENCH_SCALE") == "" {
		b.Skip("set TRACKERD_BENCH_SCALE=1 to generate a 100,000-issue tracker and measure the web view")
	}
	nIssues := envInt(b, "TRACKERD_BENCH_ISSUES", 100_000)
	nMsgs := envInt(b, "TRACKERD_BENCH_MESSAGES", 1_000_000)
	for _, d := range storetest.Drivers {
		b.Run(d, func(b *testing.B) {
			o := storetest.Options(b, d)
			if dir := os.Getenv("TRACKERD_BENCH_DIR"); dir != "" && d == store.DriverSQLite {
				o.DSN = filepath.Join(dir, fmt.Sprintf("web-%d-%d.db", nIssues, nMsgs))
			}
			if name := os.Getenv("TRACKERD_BENCH_PG_SCHEMA"); name != "" && d == store.DriverPostgres {
				o.Schema = name
			}
			st := storetest.Open(b, o)
			gen := newCorpusGen(1)
			n, err := st.CountIssues(b.Context(), store.IssueFilter{})
			if err != nil {
				b.Fatal(err)
			}
			if n != nIssues {
				if n != 0 {
					b.Fatalf("%s holds %d issues, want 0 or %d: remove it", o.DSN, n, nIssues)
				}
				start := time.Now()
				gen.fill(b, st, nIssues, nMsgs)
				b.Logf("%s: generated %d issues and %d messages in %s", d, nIssues, nMsgs, time.Since(start).Round(time.Second))
			}
			cfg := testConfig(b, func(c *config.Config) { c.Tracker.DataDir = b.TempDir() })
			base := newTestServer(b, st, cfg).URL
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			rng := rand.New(rand.NewPCG(7, 7))
			pick := func(lo, hi int) string { return gen.words[lo+rng.IntN(hi-lo)] }
			for _, page := range []struct {
				name string
				url  func() string
			}{
				{"issue", func() string { return base + "/issue/" + strconv.Itoa(1+rng.IntN(nIssues)) }},
				{"index", func() string { return base + "/" }},
				{"index-all-by-id", func() string { return base + "/?status=all&sort=id" }},
				{"index-page-50", func() string { return base + "/?page=50" }},
				{"search-rare", func() string { return base + "/?q=" + pick(1000, len(gen.words)) }},
				{"search-medium", func() string { return base + "/?q=" + pick(100, 1000) }},
				{"search-two-words", func() string { return base + "/?q=" + url.QueryEscape(pick(30, 300)+" "+pick(30, 300)) }},
				{"search-common", func() string { return base + "/?q=" + pick(0, 30) }},
				{"api-issue", func() string { return base + "/api/issues/" + strconv.Itoa(1+rng.IntN(nIssues)) }},
				{"feed", func() string { return base + "/feed.atom" }},
			} {
				b.Run(page.name, func(b *testing.B) {
					for range 20 { // warm the caches and the pool
						fetch(b, client, page.url())
					}
					var lat []time.Duration
					for b.Loop() {
						u := page.url()
						t0 := time.Now()
						fetch(b, client, u)
						lat = append(lat, time.Since(t0))
					}
					slices.Sort(lat)
					b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
					b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
					b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
				})
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func fetch(b *testing.B, c *http.Client, u string) {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
}

// corpusGen makes tracker-like text: words drawn with a Zipf law from a
// vocabulary of 8,000 made-up words, so a few words are in most messages
// and most words in few (words[0] is the most frequent).
type corpusGen struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	words []string
}

func newCorpusGen(seed uint64) *corpusGen {
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	syl := strings.Fields("ka lo mi ne ru sa ti vo be da fe gu hi jo ku la ma no pe qui re so tu va we xi yo za")
	seen := map[string]bool{}
	var words []string
	for len(words) < 8000 {
		n := 2 + rng.IntN(3)
		var w strings.Builder
		for range n {
			w.WriteString(syl[rng.IntN(len(syl))])
		}
		if !seen[w.String()] {
			seen[w.String()] = true
			words = append(words, w.String())
		}
	}
	return &corpusGen{rng: rng, zipf: rand.NewZipf(rng, 1.07, 2, uint64(len(words)-1)), words: words}
}

func (g *corpusGen) text(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			if i%12 == 0 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(g.words[g.zipf.Uint64()])
	}
	b.WriteString(".\n")
	return b.String()
}

// fill writes nIssues issues with nMsgs messages in all (at least one
// each, the rest spread at random), two nosy members and one journal entry
// per issue, 2,000 users, through the store API in transactions of 500
// issues.
func (g *corpusGen) fill(b *testing.B, st *store.Store, nIssues, nMsgs int) {
	ctx := b.Context()
	rng := g.rng
	var users []int64
	err := st.Tx(ctx, func(tx *store.Tx) error {
		for i := range 2000 {
			u := &store.User{Address: fmt.Sprintf("user%d@example.org", i), RealName: fmt.Sprintf("User %d", i), Username: fmt.Sprintf("user%d", i)}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			users = append(users, u.ID)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	counts := make([]int, nIssues)
	for i := range counts {
		counts[i] = 1
	}
	for range nMsgs - nIssues {
		counts[rng.IntN(nIssues)]++
	}
	statuses := []string{"unread", "deferred", "chatting", "need-eg", "in-progress", "testing", "done-cbb", "resolved"}
	priorities := []string{"critical", "urgent", "bug", "feature", "wish"}
	keywords := []string{"mailgw", "web", "store", "notify", "docs", "build", "security", "performance", "ui", "api"}
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	span := 5 * 365 * 24 * time.Hour
	const batch = 500
	for start := 0; start < nIssues; start += batch {
		err := st.Tx(ctx, func(tx *store.Tx) error {
			for i := start; i < min(start+batch, nIssues); i++ {
				created := t0.Add(time.Duration(int64(span) / int64(nIssues) * int64(i)))
				author := users[rng.IntN(len(users))]
				is := &store.Issue{Title: strings.TrimSuffix(g.text(4+rng.IntN(5)), ".\n"), Status: statuses[rng.IntN(len(statuses))],
					Priority: priorities[rng.IntN(len(priorities))], Created: created, CreatorID: author, ActorID: author}
				if rng.IntN(3) == 0 {
					is.AssigneeID = users[rng.IntN(len(users))]
				}
				if rng.IntN(5) == 0 {
					is.Keywords = []string{keywords[rng.IntN(len(keywords))]}
				}
				last := created
				is.Activity = created.Add(time.Duration(counts[i]) * time.Hour)
				if err := tx.CreateIssue(ctx, is); err != nil {
					return err
				}
				other := users[rng.IntN(len(users))]
				for _, u := range []int64{author, other} {
					if _, err := tx.AddNosy(ctx, is.ID, u); err != nil {
						return err
					}
				}
				for k := range counts[i] {
					who := author
					if k%2 == 1 {
						who = other
					}
					text := g.text(40 + rng.IntN(80))
					m := &store.Message{IssueID: is.ID, AuthorID: who, Date: last, MessageID: fmt.Sprintf("<gen%d.%d@example.org>", i, k),
						Content: text, FullText: text}
					if k > 0 {
						m.InReplyTo = fmt.Sprintf("<gen%d.%d@example.org>", i, k-1)
					}
					if err := tx.CreateMessage(ctx, m); err != nil {
						return err
					}
					last = last.Add(time.Hour)
				}
				if err := tx.AddChange(ctx, &store.Change{IssueID: is.ID, ActorID: author, At: created, Property: "status", New: is.Status}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if start%(20*batch) == 0 {
			b.Logf("generated %d issues", start+batch)
		}
	}
}
