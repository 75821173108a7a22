package store_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestIssuePage checks IssuePage against ListIssues, with every search
// plan: a word's match set, and issue by issue (SetSearchSetMax).
func TestIssuePage(t *testing.T) {
	// Not parallel: it changes a package setting.
	for _, d := range storetest.Drivers {
		t.Run(d, func(t *testing.T) {
			s := storetest.Open(t, storetest.Options(t, d))
			ctx := t.Context()
			u := &store.User{Address: "u@example.org"}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			texts := []string{"printer jams daily", "Printer offline", "the spooler crashed", "Über größe", "printers everywhere",
				"caféprinter", "café printer", "PRINTER_jam", "jam_printer", "printerjam"}
			err := s.Tx(ctx, func(tx *store.Tx) error {
				for i := range 40 {
					is := &store.Issue{Title: fmt.Sprintf("issue %s", texts[(i*7)%len(texts)]), Status: []string{"unread", "chatting", "resolved"}[i%3],
						Priority: []string{"bug", "urgent"}[i%2]}
					if err := tx.CreateIssue(ctx, is); err != nil {
						return err
					}
					for k := range i % 4 {
						m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: fmt.Sprintf("<m%d.%d@x>", i, k), Content: texts[(i+k)%len(texts)] + " and more"}
						if err := tx.CreateMessage(ctx, m); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if d == store.DriverPostgres {
				// IssuePage plans by the statistics of the full-text index.
				if err := store.ExecRaw(ctx, s, `ANALYZE messages`); err != nil {
					t.Fatal(err)
				}
				mce, err := store.QueryStrings(ctx, s, `SELECT most_common_elems::text FROM pg_stats
					WHERE schemaname = current_schema() AND tablename = 'messages_content_fts'`)
				if err != nil || len(mce) != 1 || !strings.Contains(mce[0], "printer") {
					t.Fatalf("no lexeme statistics after ANALYZE (%v, %q): the per-issue plan would not be tested", err, mce)
				}
			}
			for _, setMax := range []int{0, 1 << 30} {
				restore := store.SetSearchSetMax(setMax)
				for _, q := range []string{"printer", "PRINTER jams", "printer café", "größe", "über", "jam", "nothing", "issue printer", "!!", "spooler crashed"} {
					for _, f := range []store.IssueFilter{
						{Query: q},
						{Query: q, Statuses: []string{"unread", "chatting"}, Sort: "id", Limit: 3},
						{Query: q, Sort: "-title", Limit: 2, Offset: 2},
						{Query: q, Priority: "urgent", Sort: "priority", PriorityOrder: []string{"urgent", "bug"}},
					} {
						want, err := s.ListIssues(ctx, f)
						if err != nil {
							t.Fatal(err)
						}
						all := f
						all.Limit, all.Offset = 0, 0
						total, err := s.CountIssues(ctx, all)
						if err != nil {
							t.Fatal(err)
						}
						got, more, err := s.IssuePage(ctx, f)
						if err != nil {
							t.Fatalf("IssuePage(%+v): %v", f, err)
						}
						if !reflect.DeepEqual(ids(got), ids(want)) {
							t.Errorf("setMax %d: IssuePage(%+v) = %v, ListIssues = %v", setMax, f, ids(got), ids(want))
						}
						if wantMore := f.Limit > 0 && f.Offset+f.Limit < total; more != wantMore {
							t.Errorf("setMax %d: IssuePage(%+v) more = %v, want %v (total %d)", setMax, f, more, wantMore, total)
						}
					}
				}
				restore()
			}
		})
	}
}

func ids(is []store.Issue) []int64 {
	out := []int64{}
	for _, i := range is {
		out = append(out, i.ID)
	}
	return out
}
