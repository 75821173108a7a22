package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MarkFiled records that the mail with messageID from authorID was filed,
// into issueID (0: none) as message msgID (0: the mail filed no message).
// ErrDuplicate when that pair was filed before: the caller acknowledges the
// mail without filing it again. Inside a transaction, two concurrent
// deliveries of one mail race on this row's key and exactly one wins.
func (c *conn) MarkFiled(ctx context.Context, messageID string, authorID, issueID, msgID int64) error {
	// ON CONFLICT keeps a PostgreSQL transaction usable after a duplicate.
	res, err := c.exec(ctx, `INSERT INTO filed (message_id, author_id, issue_id, msg_id, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, messageID, authorID, nullID(issueID), nullID(msgID), c.d.tm(now()))
	if err != nil {
		return fail("mark filed "+messageID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("mark filed "+messageID, err)
	} else if n == 0 {
		return fail("mark filed "+messageID, ErrDuplicate)
	}
	return nil
}

// UserByAddressClaim is UserByAddress, then MarkFiled(messageID, that
// user, 0, 0): the lookup of a mail's author and the claim on the mail,
// on PostgreSQL in one statement. ErrNotFound: no user has the address,
// and nothing is claimed. ErrDuplicate, with the user: the mail was
// filed before.
func (c *conn) UserByAddressClaim(ctx context.Context, addr, messageID string) (*User, error) {
	if c.d != postgresDialect {
		u, err := c.UserByAddress(ctx, addr)
		if err != nil {
			return nil, err
		}
		return u, c.MarkFiled(ctx, messageID, u.ID, 0, 0)
	}
	lower := strings.ToLower(strings.TrimSpace(addr))
	var r userRow
	var claimed int
	err := c.get(ctx, `WITH u AS (SELECT `+userCols+` FROM users u WHERE u.id = (SELECT a.user_id FROM addresses a WHERE a.address_lower = $1)),
		f AS (INSERT INTO filed (message_id, author_id, at) SELECT $2, id, $3 FROM u ON CONFLICT DO NOTHING RETURNING 1)
		SELECT u.*, (SELECT COUNT(*) FROM f) FROM u`, []any{lower, messageID, c.d.tm(now())}, append(r.dest(), &claimed)...)
	if err != nil {
		return nil, fail("user by address "+addr, err)
	}
	u := r.user()
	if claimed == 0 {
		return &u, fail("mark filed "+messageID, ErrDuplicate)
	}
	return &u, nil
}

// UpdateFiled sets where a mail marked filed went, once that is known. A
// mail that left a message needs no update: Filed finds that message by
// the same Message-ID and author.
func (c *conn) UpdateFiled(ctx context.Context, messageID string, authorID, issueID, msgID int64) error {
	err := c.affected(ctx, `UPDATE filed SET issue_id = $1, msg_id = $2 WHERE message_id = $3 AND author_id = $4`,
		nullID(issueID), nullID(msgID), messageID, authorID)
	if err != nil {
		return fail("update filed "+messageID, err)
	}
	return nil
}

// Filed returns where the mail with messageID from authorID was filed
// (issue and message ids, 0 when none), or ErrNotFound: what UpdateFiled
// recorded, else the message the mail left (messages has the same key).
func (c *conn) Filed(ctx context.Context, messageID string, authorID int64) (issueID, msgID int64, err error) {
	err = c.get(ctx, `SELECT COALESCE(f.issue_id, m.issue_id), COALESCE(f.msg_id, m.id) FROM filed f
		LEFT JOIN messages m ON m.message_id = f.message_id AND m.author_id = f.author_id
		WHERE f.message_id = $1 AND f.author_id = $2`,
		[]any{messageID, authorID}, idCol{&issueID}, idCol{&msgID})
	if err != nil {
		return 0, 0, fail("filed "+messageID, err)
	}
	return issueID, msgID, nil
}

// IssueByTitle returns the most recently active issue whose title equals
// title case-insensitively and whose created (byActivity false) or
// activity (true) time is at or after since; ErrNotFound if none. It
// serves mailgw.subject_content_match.
func (c *conn) IssueByTitle(ctx context.Context, title string, since time.Time, byActivity bool) (*Issue, error) {
	col := "i.created"
	if byActivity {
		col = "i.activity"
	}
	var id int64
	err := c.get(ctx, `SELECT i.id FROM issues i WHERE lower(i.title) = lower($1) AND `+col+` >= $2 ORDER BY i.activity DESC, i.id DESC LIMIT 1`,
		[]any{title, c.d.tm(norm(since))}, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: issue titled %q: %w", title, ErrNotFound)
	}
	if err != nil {
		return nil, fail("issue by title", err)
	}
	return c.Issue(ctx, id)
}
