package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Issue is one issue. Status and Priority are names from the configured
// schema; the store does not check them.
type Issue struct {
	ID         int64
	Title      string
	Status     string
	Priority   string
	AssigneeID int64 // 0 = nobody
	// Keywords are kept sorted and without repeats.
	Keywords     []string
	SupersederID int64 // 0 = none
	Created      time.Time
	// Activity is the time of the last change or message.
	Activity  time.Time
	CreatorID int64 // 0 = unknown
	ActorID   int64 // the user who last changed the issue; 0 = unknown
}

// issueCols selects an issue (aliased i) with its keywords packed into
// comma-separated text (a keyword has no comma).
const issueCols = `i.id, i.title, i.status, i.priority, i.assignee_id, i.superseder_id, i.created, i.activity, i.creator_id, i.actor_id,
	COALESCE((SELECT string_agg(k.keyword, ',' ORDER BY k.keyword) FROM issue_keywords k WHERE k.issue_id = i.id), '')`

type issueRow struct {
	is       Issue
	keywords string
}

func (r *issueRow) dest() []any {
	return []any{&r.is.ID, &r.is.Title, &r.is.Status, &r.is.Priority, idCol{&r.is.AssigneeID}, idCol{&r.is.SupersederID},
		timeCol{&r.is.Created}, timeCol{&r.is.Activity}, idCol{&r.is.CreatorID}, idCol{&r.is.ActorID}, &r.keywords}
}

func (r *issueRow) issue() Issue {
	is := r.is
	is.Keywords = splitList(r.keywords, ",")
	return is
}

// cleanKeywords trims keywords, drops empty ones and repeats, sorts them,
// and refuses a comma (the separator of the subject grammar's lists).
func cleanKeywords(kws []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, k := range kws {
		k = strings.TrimSpace(k)
		if k == "" || seen[k] {
			continue
		}
		if strings.ContainsRune(k, ',') {
			return nil, fmt.Errorf("keyword %q contains a comma", k)
		}
		seen[k] = true
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// setKeywords replaces the issue's keywords.
func (c *conn) setKeywords(ctx context.Context, issueID int64, kws []string) error {
	if _, err := c.exec(ctx, `DELETE FROM issue_keywords WHERE issue_id = $1`, issueID); err != nil {
		return err
	}
	if len(kws) == 0 {
		return nil
	}
	var a args
	id := a.add(issueID)
	vals := make([]string, len(kws))
	for i, k := range kws {
		vals[i] = "(" + id + ", " + a.add(k) + ")"
	}
	_, err := c.exec(ctx, `INSERT INTO issue_keywords (issue_id, keyword) VALUES `+strings.Join(vals, ", "), a...)
	return err
}

// CreateIssue adds is with its keywords and sets is.ID. Created defaults to
// now and Activity to Created; is.Keywords is replaced by its cleaned form.
func (c *conn) CreateIssue(ctx context.Context, is *Issue) error {
	return c.createIssue(ctx, is, nil)
}

// CreateIssueWithMessage is CreateIssue, then CreateMessage(m) into the
// new issue (it sets m.IssueID): an issue and the mail that opened it.
// On PostgreSQL the two are one statement, which writes the issue's
// search row once, with the title's and the message's words. The errors
// are theirs; on one, the caller's transaction must not commit (on the
// Store itself nothing is written).
func (c *conn) CreateIssueWithMessage(ctx context.Context, is *Issue, m *Message) error {
	return c.createIssue(ctx, is, m)
}

// createIssue is CreateIssue, with CreateIssueWithMessage's m when it is
// not nil.
func (c *conn) createIssue(ctx context.Context, is *Issue, m *Message) error {
	kws, err := cleanKeywords(is.Keywords)
	if err != nil {
		return fail("create issue", err)
	}
	var date time.Time
	if m != nil {
		if err := checkMessage(m); err != nil {
			return err
		}
		date = orNow(m.Date)
	}
	created := orNow(is.Created)
	activity := norm(is.Activity)
	if activity.IsZero() {
		activity = created
	}
	var id, msgID int64
	err = c.atomic(ctx, func(c *conn) error {
		a := args(issueArgs(c.d, is, created, activity))
		if c.d != postgresDialect {
			if err := c.get(ctx, insertIssue+` RETURNING id`, a, &id); err != nil {
				return err
			}
			if c.fts != nil {
				c.fts.issue(id)
			}
			if m != nil {
				m.IssueID = id
				var err error
				if msgID, err = c.insertMessage(ctx, m, date); err != nil {
					return err
				}
			}
		} else {
			// The issue's search row, with its title's words (and the
			// message and its words), in the same statement (see
			// words.go). The message's foreign key to i's row is
			// checked at the end of the statement, when the row is there.
			q := `WITH i AS (` + insertIssue + ` RETURNING id)`
			texts, sel := []string{is.Title}, `SELECT id, 0 FROM i`
			if m != nil {
				vals := []string{`(SELECT id FROM i)`}
				for _, v := range messageArgs(c.d, m, date)[1:] {
					vals = append(vals, a.add(v))
				}
				q += `, m AS (` + insertMessage(strings.Join(vals, ", ")) + `)`
				texts, sel = append(texts, m.Content), `SELECT i.id, m.id FROM i LEFT JOIN m ON TRUE`
			}
			q += `, w AS (INSERT INTO issue_words (issue_id, words) SELECT id, ` + a.add(textWords(texts...)) + `::tsvector FROM i) ` + sel
			if err := c.get(ctx, q, a, &id, idCol{&msgID}); err != nil {
				return err
			}
			if m != nil && msgID == 0 {
				return duplicateMessage(m)
			}
		}
		if len(kws) == 0 {
			return nil // a new issue has no keyword rows to replace
		}
		return c.setKeywords(ctx, id, kws)
	})
	if err != nil {
		return fail("create issue", err)
	}
	is.ID, is.Keywords, is.Created, is.Activity = id, kws, created, activity
	if m != nil {
		m.ID, m.IssueID, m.Date = msgID, id, date
	}
	return nil
}

const insertIssue = `INSERT INTO issues (title, status, priority, assignee_id, superseder_id, created, activity, creator_id, actor_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// issueArgs are is's column values for insertIssue.
func issueArgs(d dialect, is *Issue, created, activity time.Time) []any {
	return []any{is.Title, is.Status, is.Priority, nullID(is.AssigneeID), nullID(is.SupersederID),
		d.tm(created), d.tm(activity), nullID(is.CreatorID), nullID(is.ActorID)}
}

// indexBeforeRetitle adds the transaction's pending issues to the SQLite
// FTS5 index before is's title changes, when is is one of them: the update
// trigger removes the old title from the index, which must be there.
func (c *conn) indexBeforeRetitle(ctx context.Context, is *Issue) error {
	p := c.fts
	if p == nil || p.issueMin == 0 || is.ID < p.issueMin || is.ID > p.issueMax {
		return nil
	}
	var old string
	if err := c.get(ctx, `SELECT title FROM issues WHERE id = $1`, []any{is.ID}, &old); err != nil {
		return err
	}
	if old == is.Title {
		return nil
	}
	return p.flush(ctx, c)
}

// Issue returns issue id, or ErrNotFound.
func (c *conn) Issue(ctx context.Context, id int64) (*Issue, error) {
	var r issueRow
	if err := c.get(ctx, `SELECT `+issueCols+` FROM issues i WHERE i.id = $1`, []any{id}, r.dest()...); err != nil {
		return nil, fail(fmt.Sprintf("issue %d", id), err)
	}
	is := r.issue()
	return &is, nil
}

// UpdateIssue stores every mutable field of is: title, status, priority,
// assignee, superseder, keywords (replaced), activity and actor. A zero
// Activity leaves the stored one. Created and CreatorID do not change.
// ErrNotFound if there is no issue is.ID.
func (c *conn) UpdateIssue(ctx context.Context, is *Issue) error {
	kws, err := cleanKeywords(is.Keywords)
	if err != nil {
		return fail("update issue", err)
	}
	activity := norm(is.Activity)
	err = c.atomic(ctx, func(c *conn) error {
		if err := c.indexBeforeRetitle(ctx, is); err != nil {
			return err
		}
		set := `UPDATE issues SET title = $1, status = $2, priority = $3, assignee_id = $4, superseder_id = $5,
			activity = COALESCE($6, activity), actor_id = $7`
		args := []any{is.Title, is.Status, is.Priority, nullID(is.AssigneeID), nullID(is.SupersederID),
			c.d.tm(activity), nullID(is.ActorID), is.ID}
		if c.d == sqliteDialect {
			if err := c.affected(ctx, set+` WHERE id = $8`, args...); err != nil {
				return err
			}
		} else {
			// The title it had, locked (so that it is the latest one),
			// in the same statement: a new title rewrites the issue's
			// search row.
			var old string
			err := c.get(ctx, `WITH old AS (SELECT title FROM issues WHERE id = $8 FOR UPDATE) `+
				set+` FROM old WHERE issues.id = $8 RETURNING old.title`, args, &old)
			if err != nil {
				return err
			}
			if old != is.Title {
				if err := c.reindexIssue(ctx, is.ID, is.Title); err != nil {
					return err
				}
			}
		}
		return c.setKeywords(ctx, is.ID, kws)
	})
	if err != nil {
		return fail(fmt.Sprintf("update issue %d", is.ID), err)
	}
	is.Keywords = kws
	if !activity.IsZero() {
		is.Activity = activity
	}
	return nil
}

// IssueFilter selects, orders and pages issues. The zero value selects all
// issues, most recently active first.
type IssueFilter struct {
	// Statuses keeps issues in any of these statuses; empty keeps all.
	Statuses []string
	// Priority and Keyword, when set, must match exactly.
	Priority string
	Keyword  string
	// AssigneeID keeps issues assigned to this user; -1 keeps unassigned
	// issues; 0 keeps all.
	AssigneeID int64
	// Query is full-text search: every word of it (a run of letters and
	// digits; case does not matter; at most 16 words count) must occur as
	// a whole word in the title or in some message of the issue. A query
	// with no word in it matches nothing.
	Query string
	// Sort is "activity" (the default, newest first), "created", "id",
	// "priority" or "title" (these four ascending); a leading "-" reverses
	// the order. Ties go by id in the same direction.
	Sort string
	// PriorityOrder, when set, is the order "priority" sorts by (the
	// configured schema.priorities, most urgent first); priorities not in
	// it come last. Without it priorities sort by name.
	PriorityOrder []string
	// Limit caps the number of issues (0 = no limit); Offset skips the
	// first ones.
	Limit, Offset int
}

// maxSearchWords bounds the work one query can ask for.
const maxSearchWords = 16

// searchWords splits a search query into words (see forWords), without
// repeats.
func searchWords(q string) []string {
	var out []string
	seen := map[string]bool{}
	forWords(q, func(w string) {
		if seen[w] || len(out) == maxSearchWords {
			return
		}
		w = strings.Clone(w)
		seen[w] = true
		out = append(out, w)
	})
	return out
}

// issueWhere returns the WHERE clause for f ("" for none), adding its
// arguments to a.
func (c *conn) issueWhere(f IssueFilter, a *args) string {
	var conds []string
	if len(f.Statuses) > 0 {
		conds = append(conds, `i.status IN (`+a.list(f.Statuses)+`)`)
	}
	if f.Priority != "" {
		conds = append(conds, `i.priority = `+a.add(f.Priority))
	}
	if f.Keyword != "" {
		conds = append(conds, `EXISTS (SELECT 1 FROM issue_keywords k WHERE k.issue_id = i.id AND k.keyword = `+a.add(f.Keyword)+`)`)
	}
	switch {
	case f.AssigneeID > 0:
		conds = append(conds, `i.assignee_id = `+a.add(f.AssigneeID))
	case f.AssigneeID < 0:
		conds = append(conds, `i.assignee_id IS NULL`)
	}
	if strings.TrimSpace(f.Query) != "" {
		words := searchWords(f.Query)
		if len(words) == 0 {
			conds = append(conds, `1 = 0`)
		}
		if len(words) > 0 {
			conds = append(conds, c.d.matchWords(a, words))
		}
	}
	if len(conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(conds, ` AND `)
}

// issueOrder returns the ORDER BY clause for f.
func (c *conn) issueOrder(f IssueFilter, a *args) (string, error) {
	key, reverse := strings.CutPrefix(f.Sort, "-")
	var expr string
	desc := false
	switch key {
	case "", "activity":
		expr, desc = `i.activity`, true
	case "created":
		expr = `i.created`
	case "id":
		expr = `i.id`
	case "title":
		expr = c.d.titleOrder()
	case "priority":
		if len(f.PriorityOrder) == 0 {
			expr = `i.priority`
			break
		}
		var b strings.Builder
		b.WriteString(`CASE i.priority`)
		for i, p := range f.PriorityOrder {
			fmt.Fprintf(&b, ` WHEN %s THEN %d`, a.add(p), i)
		}
		fmt.Fprintf(&b, ` ELSE %d END`, len(f.PriorityOrder))
		expr = b.String()
	default:
		return "", fmt.Errorf("unknown sort %q (want activity, created, id, priority or title, optionally with a leading -)", f.Sort)
	}
	if reverse {
		desc = !desc
	}
	dir := ` ASC`
	if desc {
		dir = ` DESC`
	}
	if key == "id" {
		return ` ORDER BY i.id` + dir, nil
	}
	return ` ORDER BY ` + expr + dir + `, i.id` + dir, nil
}

// ListIssues returns the issues f selects, in f's order.
func (c *conn) ListIssues(ctx context.Context, f IssueFilter) ([]Issue, error) {
	var a args
	where := c.issueWhere(f, &a)
	order, err := c.issueOrder(f, &a)
	if err != nil {
		return nil, fail("list issues", err)
	}
	page := ` LIMIT ` + a.add(limitArg(f.Limit)) + ` OFFSET ` + a.add(max(f.Offset, 0))
	var out []Issue
	err = c.each(ctx, `SELECT `+issueCols+` FROM issues i`+where+order+page, a, func(rows *sql.Rows) error {
		var r issueRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.issue())
		return nil
	})
	if err != nil {
		return nil, fail("list issues", err)
	}
	return out, nil
}

// CountIssues counts the issues f selects, ignoring its sort and paging.
func (c *conn) CountIssues(ctx context.Context, f IssueFilter) (int, error) {
	var a args
	where := c.issueWhere(f, &a)
	var n int
	if err := c.get(ctx, `SELECT COUNT(*) FROM issues i`+where, a, &n); err != nil {
		return 0, fail("count issues", err)
	}
	return n, nil
}

// AddNosy puts user userID on issue issueID's nosy list. added is false if
// the user was on it already. ErrNotFound if the issue or the user does not
// exist.
func (c *conn) AddNosy(ctx context.Context, issueID, userID int64) (added bool, err error) {
	res, err := c.exec(ctx, `INSERT INTO nosy (issue_id, user_id)
		SELECT i.id, u.id FROM issues i, users u WHERE i.id = $1 AND u.id = $2
		ON CONFLICT DO NOTHING`, issueID, userID)
	if err != nil {
		return false, fail("add nosy", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("add nosy", err)
	}
	if n > 0 {
		return true, nil
	}
	var on int
	if err := c.get(ctx, `SELECT COUNT(*) FROM nosy WHERE issue_id = $1 AND user_id = $2`, []any{issueID, userID}, &on); err != nil {
		return false, fail("add nosy", err)
	}
	if on == 0 {
		return false, fail(fmt.Sprintf("add user %d to the nosy list of issue %d", userID, issueID), ErrNotFound)
	}
	return false, nil
}

// RemoveNosy takes user userID off issue issueID's nosy list. removed is
// false if the user was not on it.
func (c *conn) RemoveNosy(ctx context.Context, issueID, userID int64) (removed bool, err error) {
	res, err := c.exec(ctx, `DELETE FROM nosy WHERE issue_id = $1 AND user_id = $2`, issueID, userID)
	if err != nil {
		return false, fail("remove nosy", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("remove nosy", err)
	}
	return n > 0, nil
}

// Nosy returns the users on issue issueID's nosy list, ordered by id (none
// for an issue that does not exist).
func (c *conn) Nosy(ctx context.Context, issueID int64) ([]User, error) {
	us, err := c.users(ctx, `FROM users u JOIN nosy n ON n.user_id = u.id WHERE n.issue_id = $1 ORDER BY u.id`, issueID)
	if err != nil {
		return nil, fail(fmt.Sprintf("nosy of issue %d", issueID), err)
	}
	return us, nil
}
