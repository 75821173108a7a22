package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Queries of the web view: each page reads what it shows in a fixed
// number of statements, whatever the number of issues, messages or people
// on it.

// idList appends ids to a and returns their placeholders; "NULL" for none,
// so "x IN (NULL)" matches nothing.
func idList(a *args, ids []int64) string {
	if len(ids) == 0 {
		return "NULL"
	}
	ps := make([]string, len(ids))
	for i, id := range ids {
		ps[i] = a.add(id)
	}
	return strings.Join(ps, ", ")
}

// UsersByID returns the users with these ids, keyed by id; ids that name
// no user are absent.
func (c *conn) UsersByID(ctx context.Context, ids []int64) (map[int64]User, error) {
	out := make(map[int64]User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var a args
	us, err := c.users(ctx, `FROM users u WHERE u.id IN (`+idList(&a, uniqueIDs(ids))+`)`, a...)
	if err != nil {
		return nil, fail("users by id", err)
	}
	for _, u := range us {
		out[u.ID] = u
	}
	return out, nil
}

// uniqueIDs returns ids without zeros and repeats, in their first order.
func uniqueIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id != 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// MessageCounts returns how many messages each of these issues has;
// issues without messages are absent.
func (c *conn) MessageCounts(ctx context.Context, issueIDs []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(issueIDs))
	if len(issueIDs) == 0 {
		return out, nil
	}
	var a args
	err := c.each(ctx, `SELECT issue_id, COUNT(*) FROM messages WHERE issue_id IN (`+idList(&a, uniqueIDs(issueIDs))+`) GROUP BY issue_id`, a,
		func(rows *sql.Rows) error {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			out[id] = n
			return nil
		})
	if err != nil {
		return nil, fail("message counts", err)
	}
	return out, nil
}

// NosyCount returns the length of issue issueID's nosy list.
func (c *conn) NosyCount(ctx context.Context, issueID int64) (int, error) {
	var n int
	if err := c.get(ctx, `SELECT COUNT(*) FROM nosy WHERE issue_id = $1`, []any{issueID}, &n); err != nil {
		return 0, fail(fmt.Sprintf("nosy count of issue %d", issueID), err)
	}
	return n, nil
}

// IssueFiles returns the files of every message of issue issueID, without
// Data, ordered by message and then by id.
func (c *conn) IssueFiles(ctx context.Context, issueID int64) ([]File, error) {
	return c.files(ctx, fmt.Sprintf("files of issue %d", issueID), `SELECT f.id, f.message_id, f.name, f.content_type, f.size, f.sha256
		FROM files f JOIN messages m ON m.id = f.message_id WHERE m.issue_id = $1 ORDER BY f.message_id, f.id`, issueID)
}

// FeedMessage is a message as a feed shows it: with its issue's title,
// and whether it opened the issue.
type FeedMessage struct {
	Message
	IssueTitle string
	// First is true when this is the issue's first message: the entry
	// announces a new issue.
	First bool
}

// RecentMessages returns the newest messages (by id, which follows
// arrival), newest first, at most limit; issueID > 0 keeps only that
// issue's messages.
func (c *conn) RecentMessages(ctx context.Context, issueID int64, limit int) ([]FeedMessage, error) {
	var a args
	where := ""
	if issueID > 0 {
		where = ` WHERE m.issue_id = ` + a.add(issueID)
	}
	q := `SELECT m.id, m.issue_id, m.author_id, m.date, m.message_id, m.in_reply_to, m.refs, m.content, m.full_text, m.summary, m.inbound_id,
		i.title, (SELECT f.id FROM messages f WHERE f.issue_id = m.issue_id ORDER BY f.date, f.id LIMIT 1)
		FROM messages m JOIN issues i ON i.id = m.issue_id` + where + ` ORDER BY m.id DESC LIMIT ` + a.add(limitArg(limit))
	var out []FeedMessage
	err := c.each(ctx, q, a, func(rows *sql.Rows) error {
		var r messageRow
		var fm FeedMessage
		var first int64
		if err := rows.Scan(append(r.dest(), &fm.IssueTitle, &first)...); err != nil {
			return err
		}
		fm.Message = r.message()
		fm.First = first == fm.ID
		out = append(out, fm)
		return nil
	})
	if err != nil {
		return nil, fail("recent messages", err)
	}
	return out, nil
}

// RemoveNosyEverywhere takes user userID off every nosy list and returns
// how many lists it was on.
func (c *conn) RemoveNosyEverywhere(ctx context.Context, userID int64) (int, error) {
	res, err := c.exec(ctx, `DELETE FROM nosy WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fail("remove nosy everywhere", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail("remove nosy everywhere", err)
	}
	return int(n), nil
}

// OnNosy reports whether user userID is on issue issueID's nosy list.
func (c *conn) OnNosy(ctx context.Context, issueID, userID int64) (bool, error) {
	var n int
	if err := c.get(ctx, `SELECT COUNT(*) FROM nosy WHERE issue_id = $1 AND user_id = $2`, []any{issueID, userID}, &n); err != nil {
		return false, fail("on nosy", err)
	}
	return n > 0, nil
}

// Search plan (IssuePage). The first page of a search must cost about
// the same for a rare word as for a word in every issue, on a tracker of
// any size. Three ways to find the issues holding a word:
//
//   - drive: read the word's whole match set, then sort those issues; the
//     cost grows with the set, so only for rare words.
//   - set: walk the issues in the page's order and keep those whose id is
//     in the word's match set (built once per query); the cost is the set
//     plus the walk, which stops when the page is full.
//   - check: walk the issues in the page's order and look the word up for
//     each issue alone; cheap per issue only when most issues hold it.
var (
	// searchDriveMax (SQLite: index rows) is the largest match set that
	// drives the query.
	searchDriveMax = 2000
	// searchSetMax (SQLite: index rows) is the largest match set that is
	// built; a commoner word is checked issue by issue.
	searchSetMax = 60000
	// searchWalkMin (PostgreSQL: the estimated share of issues holding
	// every word) is where the page walks the issues in order and checks
	// each; below it the matching issues are found first and sorted.
	searchWalkMin = 0.05
)

// IssuePage returns the issues f selects, in f's order, like ListIssues,
// and whether more follow (it reads f.Limit+1 rows; it counts nothing).
// A full-text query is planned by how common its words are (see
// searchDriveMax), so that the first page of a search for a common word
// costs no more than one for a rare word.
func (c *conn) IssuePage(ctx context.Context, f IssueFilter) (issues []Issue, more bool, err error) {
	query := f.Query
	f.Query = ""
	var a args
	where := c.issueWhere(f, &a)
	from := ` FROM issues i`
	var conds []string
	if strings.TrimSpace(query) != "" {
		words := searchWords(query)
		if len(words) == 0 {
			return nil, false, nil
		}
		var err error
		if c.d == sqliteDialect {
			from, conds, err = c.sqliteSearchPlan(ctx, &a, words, f.Sort)
		} else {
			conds, err = c.pgSearchPlan(ctx, &a, words)
		}
		if err != nil {
			return nil, false, fail("issue page", err)
		}
	}
	if len(conds) > 0 {
		if where == "" {
			where = ` WHERE `
		} else {
			where += ` AND `
		}
		where += strings.Join(conds, ` AND `)
	}
	order, err := c.issueOrder(f, &a)
	if err != nil {
		return nil, false, fail("issue page", err)
	}
	limit, lim := f.Limit, limitArg(f.Limit)
	if limit > 0 {
		lim++
	}
	page := ` LIMIT ` + a.add(lim) + ` OFFSET ` + a.add(max(f.Offset, 0))
	err = c.each(ctx, `SELECT `+issueCols+from+where+order+page, a, func(rows *sql.Rows) error {
		var r issueRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		issues = append(issues, r.issue())
		return nil
	})
	if err != nil {
		return nil, false, fail("issue page", err)
	}
	if limit > 0 && len(issues) > limit {
		issues, more = issues[:limit], true
	}
	return issues, more, nil
}

// sqliteSearchPlan returns the FROM clause and the conditions that find
// the issues holding every one of words, each word planned by the number
// of index rows holding it (counted up to searchSetMax).
func (c *conn) sqliteSearchPlan(ctx context.Context, a *args, words []string, sort string) (from string, conds []string, err error) {
	drive, least := -1, searchDriveMax+1
	counts := make([]int, len(words))
	for k, w := range words {
		var n int
		if err := c.get(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH $1 LIMIT $2)`,
			[]any{ftsString(w), searchSetMax + 1}, &n); err != nil {
			return "", nil, err
		}
		if n == 0 {
			return ` FROM issues i`, []string{`1 = 0`}, nil
		}
		counts[k] = n
		if n < least {
			drive, least = k, n
		}
	}
	from = ` FROM issues i`
	if drive < 0 {
		// Walk in the page's order: for the default order, along the
		// activity index (SQLite would otherwise take the status index
		// and sort every open issue).
		if key, _ := strings.CutPrefix(sort, "-"); key == "" || key == "activity" {
			from = ` FROM issues i INDEXED BY issues_activity`
		}
	}
	// Cheap tests first (set membership), then the per-issue checks,
	// rarest first: each condition runs only for issues the earlier ones
	// kept.
	order := make([]int, len(words))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(x, y int) int {
		return cmp.Compare(counts[x], counts[y]) // counted up to searchSetMax+1
	})
	for _, k := range order {
		w := words[k]
		switch {
		case k == drive:
			// The rare word's issues drive the query (CROSS JOIN fixes
			// the order of the join).
			from = ` FROM (SELECT DISTINCT issue_id FROM (` + ftsIssues(a, w) + `)) h
				CROSS JOIN issues i ON i.id = h.issue_id`
		case counts[k] <= searchSetMax:
			// The unary + keeps SQLite from driving the query by the set.
			conds = append(conds, `+i.id IN (`+ftsIssues(a, w)+`)`)
		default:
			conds = append(conds, `EXISTS (SELECT 1 FROM search_fts WHERE search_fts MATCH `+a.add(ftsString(w))+
				` AND rowid BETWEEN i.id << 32 AND (i.id << 32) + 4294967295)`)
		}
	}
	return from, conds, nil
}

// pgSearchPlan returns the conditions that find the issues holding every
// one of words. PostgreSQL's own plan walks the issues in order whenever
// it expects the words to be common; but it does not count the cost of
// reading an issue's TOASTed lexemes, so it walks far too long for a rare
// word. The share of issues holding the words is estimated here from the
// lexeme statistics ANALYZE keeps (the commonest lexemes and their
// frequencies; a word not among them is rare), and below searchWalkMin
// the matching issues are collected first.
func (c *conn) pgSearchPlan(ctx context.Context, a *args, words []string) ([]string, error) {
	share := 1.0
	if searchWalkMin > 0 {
		for _, w := range words {
			f, err := c.pgWordShare(ctx, w)
			if err != nil {
				return nil, err
			}
			share *= max(f, 0)
		}
	}
	if share >= searchWalkMin {
		// OFFSET 0 keeps the EXISTS a per-issue subplan.
		return []string{`EXISTS (SELECT 1 FROM issue_words w WHERE w.issue_id = i.id AND w.words @@ ` + pgQuery(a, words) + ` OFFSET 0)`}, nil
	}
	// OFFSET 0 keeps the set a set: the planner cannot turn it into a
	// lookup per issue.
	return []string{`i.id IN (` + pgIssues(a, words) + ` OFFSET 0)`}, nil
}

// pgWordShare estimates the share of issues holding word from the
// statistics PostgreSQL keeps on issue_words.words: 0 for a word not among
// the commonest lexemes (or with no statistics yet).
func (c *conn) pgWordShare(ctx context.Context, word string) (float64, error) {
	var f float64
	err := c.get(ctx, `SELECT COALESCE(
		(SELECT e.freq FROM pg_stats s CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e(elem, freq)
			WHERE s.schemaname = current_schema() AND s.tablename = 'issue_words' AND s.attname = 'words' AND e.elem = $1 LIMIT 1), 0)`,
		[]any{word}, &f)
	return f, err
}
