package store

import (
	"context"
	"database/sql"
	"fmt"
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
	var out []File
	err := c.each(ctx, `SELECT f.id, f.message_id, f.name, f.content_type, f.size, f.sha256
		FROM files f JOIN messages m ON m.id = f.message_id WHERE m.issue_id = $1 ORDER BY f.message_id, f.id`,
		[]any{issueID}, func(rows *sql.Rows) error {
			var f File
			if err := rows.Scan(&f.ID, &f.MessageID, &f.Name, &f.Type, &f.Size, &f.SHA256); err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
	if err != nil {
		return nil, fail(fmt.Sprintf("files of issue %d", issueID), err)
	}
	return out, nil
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

// searchSetMax is the number of rows (messages and titles) below which a
// search word is looked up through its whole match set; a commoner word is
// checked issue by issue, in the page's order, which stops as soon as the
// page is full. A word in most messages would otherwise cost a lookup per
// message it is in, for every page.
var searchSetMax = 20000

// IssuePage returns the issues f selects, in f's order, like ListIssues,
// and whether more follow (it reads f.Limit+1 rows; it counts nothing).
// On SQLite a full-text query is planned by how common its words are (see
// searchSetMax), so that the first page of a search for a common word
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
		// The rarest word under searchSetMax rows drives the query
		// through its match set; the others are checked issue by issue.
		anchor, least, known := -1, searchSetMax, true
		for i, w := range words {
			var n int
			var err error
			if c.d == sqliteDialect {
				n, err = c.ftsRows(ctx, w, least)
			} else {
				n, err = c.pgWordRows(ctx, w)
			}
			if err != nil {
				return nil, false, fail("issue page", err)
			}
			if n < 0 {
				known = false // no statistics yet: plan as ListIssues does
			}
			if n < least {
				anchor, least = i, n
			}
		}
		for i, w := range words {
			switch {
			case !known || c.d == postgresDialect && i == anchor:
				conds = append(conds, c.d.matchWord(&a, w))
			case i == anchor:
				// SQLite: the issues holding the rarest word drive the
				// query (CROSS JOIN fixes the order); it would otherwise
				// walk every issue in the sort order and test each.
				p := a.add(`"` + w + `"`)
				from = ` FROM (SELECT rowid AS id FROM issues_fts WHERE issues_fts MATCH ` + p +
					` UNION SELECT m.issue_id FROM messages m WHERE m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ` + p + `)) h
					CROSS JOIN issues i ON i.id = h.id`
			case c.d == sqliteDialect:
				conds = append(conds, c.sqliteWordInIssue(&a, w))
			default:
				conds = append(conds, pgWordInIssue(&a, w))
			}
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

// ftsRows counts the titles and messages that hold word, stopping at
// limit (SQLite only): a cheap measure of how common the word is.
func (c *conn) ftsRows(ctx context.Context, word string, limit int) (int, error) {
	var n int
	err := c.get(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH $1 LIMIT $2))
		+ (SELECT COUNT(*) FROM (SELECT rowid FROM issues_fts WHERE issues_fts MATCH $1 LIMIT $2))`, []any{`"` + word + `"`, limit}, &n)
	return n, err
}

// sqliteWordInIssue is the condition that issue i holds word in its title
// or in a message, checked for this issue alone: a substring test first,
// and FTS5 to confirm a whole word. The substring test rules an issue out
// only when the word is ASCII: ASCII letters fold alike in lower() and in
// FTS5's unicode61 tokenizer.
func (c *conn) sqliteWordInIssue(a *args, word string) string {
	p := a.add(`"` + word + `"`)
	title, content := "", ""
	if isASCII(word) {
		lw := a.add(word)
		title = `instr(lower(i.title), ` + lw + `) > 0 AND `
		content = `instr(lower(m.content), ` + lw + `) > 0 AND `
	}
	return `((` + title + `EXISTS (SELECT 1 FROM issues_fts WHERE issues_fts MATCH ` + p + ` AND issues_fts.rowid = i.id))
		OR EXISTS (SELECT 1 FROM messages m WHERE m.issue_id = i.id AND ` + content + `EXISTS (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ` + p + ` AND messages_fts.rowid = m.id)))`
}

// pgWordRows estimates how many messages hold word from the statistics
// PostgreSQL keeps on the full-text index (the 1,000 commonest lexemes and
// their frequencies): 0 for a word not among them, -1 when there are no
// statistics yet.
func (c *conn) pgWordRows(ctx context.Context, word string) (int, error) {
	var n float64
	err := c.get(ctx, `SELECT COALESCE(
		(SELECT f.freq * GREATEST((SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass), 0)
			FROM pg_stats s CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS f(elem, freq)
			WHERE s.schemaname = current_schema() AND s.tablename = 'messages_content_fts' AND f.elem = $1 LIMIT 1),
		(SELECT 0 FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = 'messages_content_fts' AND s.most_common_elems IS NOT NULL),
		-1)`, []any{word}, &n)
	return int(n), err
}

// pgWordInIssue is the condition that issue i holds word, checked for this
// issue alone (PostgreSQL): a substring test first when the word is ASCII,
// then the same tsvector match as the indexes. OFFSET 0 keeps the EXISTS a
// per-issue subplan: flattened into a semi-join, the planner would compute
// to_tsvector over every message (25 s for a common word in 1,000,000).
func pgWordInIssue(a *args, word string) string {
	p := a.add(word)
	title, content := "", ""
	if isASCII(word) {
		title = `strpos(lower(i.title), ` + p + `) > 0 AND `
		content = `strpos(lower(m.content), ` + p + `) > 0 AND `
	}
	return `((` + title + `to_tsvector('simple', i.title) @@ plainto_tsquery('simple', ` + p + `))
		OR EXISTS (SELECT 1 FROM messages m WHERE m.issue_id = i.id AND ` + content +
		`to_tsvector('simple', left(m.content, ` + ftsPrefix + `)) @@ plainto_tsquery('simple', ` + p + `) OFFSET 0))`
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
