package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The counters of mailgw's abuse controls (issue 8): what one sender did
// lately, read from the issues and messages it filed, and the notices it
// was sent.

// IssuesCreatedSince counts the issues userID opened at or after since,
// up to upTo: the count stops there, so a check against a limit reads at
// most that many index entries however many issues the sender opened.
func (c *conn) IssuesCreatedSince(ctx context.Context, userID int64, since time.Time, upTo int) (int, error) {
	var n int
	err := c.get(ctx, `SELECT count(*) FROM (SELECT 1 FROM issues WHERE creator_id = $1 AND created >= $2 LIMIT $3) AS recent`,
		[]any{userID, c.d.tm(since), upTo}, &n)
	if err != nil {
		return 0, fail(fmt.Sprintf("issues created by user %d", userID), err)
	}
	return n, nil
}

// MessagesSince counts the messages authorID filed on issueID dated at or
// after since, up to upTo.
func (c *conn) MessagesSince(ctx context.Context, issueID, authorID int64, since time.Time, upTo int) (int, error) {
	var n int
	err := c.get(ctx, `SELECT count(*) FROM (SELECT 1 FROM messages WHERE issue_id = $1 AND date >= $2 AND author_id = $3 LIMIT $4) AS recent`,
		[]any{issueID, c.d.tm(since), authorID, upTo}, &n)
	if err != nil {
		return 0, fail(fmt.Sprintf("messages by user %d on issue %d", authorID, issueID), err)
	}
	return n, nil
}

// NoteSender records that address was sent a notice of kind on the UTC day
// of at, and reports whether this is the first such notice that day (false:
// one was sent already, and the caller sends none). Notices older than the
// day before are forgotten.
func (c *conn) NoteSender(ctx context.Context, address, kind string, at time.Time) (bool, error) {
	at = orNow(at)
	day := at.Format(time.DateOnly)
	if _, err := c.exec(ctx, `DELETE FROM sender_notices WHERE day < $1`, at.AddDate(0, 0, -1).Format(time.DateOnly)); err != nil {
		return false, fail("forget old sender notices", err)
	}
	res, err := c.exec(ctx, `INSERT INTO sender_notices (address, kind, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		strings.ToLower(address), kind, day)
	if err != nil {
		return false, fail("note sender notice", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("note sender notice", err)
	}
	return n == 1, nil
}
