package store_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestIssuePage checks IssuePage against ListIssues, with every search
// plan forced (SetSearchPlan), and ListIssues' search against the words
// of every title and message, found here without an index.
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
				"caféprinter", "café printer", "PRINTER_jam", "jam_printer", "printerjam",
				// PostgreSQL's own parser kept these whole (migration 0012).
				"ask bob@example.com", "see https://example.org/spool/log.txt", "e-mail daily", "the printer's tray", "ΣΊΣΥΦΟΣ example"}
			holds := map[int64][]string{} // issue id: its title and message texts
			err := s.Tx(ctx, func(tx *store.Tx) error {
				for i := range 40 {
					is := &store.Issue{Title: fmt.Sprintf("issue %s", texts[(i*7)%len(texts)]), Status: []string{"unread", "chatting", "resolved"}[i%3],
						Priority: []string{"bug", "urgent"}[i%2]}
					if err := tx.CreateIssue(ctx, is); err != nil {
						return err
					}
					holds[is.ID] = append(holds[is.ID], is.Title)
					for k := range i % 4 {
						m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: fmt.Sprintf("<m%d.%d@x>", i, k), Content: texts[(i+k)%len(texts)] + " and more"}
						if err := tx.CreateMessage(ctx, m); err != nil {
							return err
						}
						holds[is.ID] = append(holds[is.ID], m.Content)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Messages filed later, on an issue with messages (1) and on
			// one without (4): its row gains their words.
			err = s.Tx(ctx, func(tx *store.Tx) error {
				for _, id := range []int64{ids0(holds, 1), ids0(holds, 4)} {
					m := &store.Message{IssueID: id, AuthorID: u.ID, MessageID: fmt.Sprintf("<late%d@x>", id), Content: "late zebra"}
					if err := tx.CreateMessage(ctx, m); err != nil {
						return err
					}
					holds[id] = append(holds[id], m.Content)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if d == store.DriverPostgres {
				// Each issue has one row, with the words of its title and
				// its messages, however its messages came.
				for id, texts := range holds {
					want := map[string]bool{}
					for _, text := range texts {
						for _, w := range strings.FieldsFunc(fold(text), notWordRune) {
							want[w] = true
						}
					}
					got, err := store.QueryStrings(ctx, s, `SELECT unnest(tsvector_to_array(words)) FROM issue_words WHERE issue_id = $1`, id)
					if err != nil || !slices.Equal(slices.Sorted(maps.Keys(want)), slices.Sorted(slices.Values(got))) {
						t.Fatalf("issue %d: issue_words holds %q (%v), want %q", id, got, err, slices.Sorted(maps.Keys(want)))
					}
				}
			}
			// Searching without an index: an issue matches when each word
			// is a whole word (letters and digits) of its title or of one
			// of its messages.
			naive := func(q string) []int64 {
				out := []int64{}
			issues:
				for _, id := range slices.Sorted(maps.Keys(holds)) {
					for _, w := range strings.FieldsFunc(fold(q), notWordRune) {
						found := false
						for _, text := range holds[id] {
							found = found || slices.Contains(strings.FieldsFunc(fold(text), notWordRune), w)
						}
						if !found {
							continue issues
						}
					}
					out = append(out, id)
				}
				return out
			}
			queries := []string{"zebra late", "printer", "PRINTER jams", "printer café", "größe", "über", "jam", "nothing", "issue printer", "!!", "spooler crashed", "more printerjam",
				"example", "bob", "example.com", "spool log", "txt https", "mail", "e-mail", "printer s", "σίσυφος", "ΣΊΣΥΦΟΣ example"}
			for _, q := range queries {
				if q == "!!" {
					continue
				}
				got, err := s.ListIssues(ctx, store.IssueFilter{Query: q, Sort: "id"})
				if err != nil {
					t.Fatal(err)
				}
				if want := naive(q); !reflect.DeepEqual(ids(got), want) {
					t.Errorf("ListIssues(%q) = %v, want %v", q, ids(got), want)
				}
			}
			if d == store.DriverPostgres {
				// IssuePage plans by the statistics of the full-text index.
				if err := store.ExecRaw(ctx, s, `ANALYZE issue_words`); err != nil {
					t.Fatal(err)
				}
				mce, err := store.QueryStrings(ctx, s, `SELECT most_common_elems::text FROM pg_stats
					WHERE schemaname = current_schema() AND tablename = 'issue_words' AND attname = 'words'`)
				if err != nil || len(mce) != 1 || !strings.Contains(mce[0], "printer") {
					t.Fatalf("no lexeme statistics after ANALYZE (%v, %q): the walking plan would not be tested", err, mce)
				}
			}
			plans := []struct {
				name             string
				driveMax, setMax int
				walkMin          float64
			}{
				{"drive", 1 << 30, 1 << 30, 2},
				{"set", 0, 1 << 30, 2},
				{"check", 0, 0, 0},
				{"default", 2000, 60000, 0.05},
			}
			for _, plan := range plans {
				restore := store.SetSearchPlan(plan.driveMax, plan.setMax, plan.walkMin)
				for _, q := range queries {
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
							t.Errorf("plan %s: IssuePage(%+v) = %v, ListIssues = %v", plan.name, f, ids(got), ids(want))
						}
						if wantMore := f.Limit > 0 && f.Offset+f.Limit < total; more != wantMore {
							t.Errorf("plan %s: IssuePage(%+v) more = %v, want %v (total %d)", plan.name, f, more, wantMore, total)
						}
					}
				}
				restore()
			}
		})
	}
}

func notWordRune(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }

// fold folds s's case the way FTS5 does: ς is σ.
func fold(s string) string {
	return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, s)
}

func ids(is []store.Issue) []int64 {
	out := []int64{}
	for _, i := range is {
		out = append(out, i.ID)
	}
	return out
}

// ids0 returns the n-th smallest issue id of holds, counting from 0.
func ids0(holds map[int64][]string, n int) int64 {
	return slices.Sorted(maps.Keys(holds))[n]
}
