package store

import (
	"context"
	"fmt"
	"strings"
)

// Token kinds. Unsubscribe and bounce tokens share one table and one
// mechanism; the kind keeps them apart, so a bounce token (seen by every
// relay on the way) can never unsubscribe anyone.
const (
	tokenUnsubscribe = "unsubscribe"
	tokenBounce      = "bounce"
)

func (c *conn) createToken(ctx context.Context, kind, token string, userID, issueID int64) error {
	if token == "" || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fail("create "+kind+" token", fmt.Errorf("token %q is empty or contains white space", token))
	}
	res, err := c.exec(ctx, `INSERT INTO tokens (token, kind, user_id, issue_id, created) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		token, kind, userID, nullID(issueID), c.d.tm(now()))
	if err != nil {
		return fail("create "+kind+" token", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail("create "+kind+" token", err)
	}
	if n == 0 {
		return fail("create "+kind+" token", ErrDuplicate)
	}
	return nil
}

func (c *conn) token(ctx context.Context, kind, token string) (userID, issueID int64, err error) {
	err = c.get(ctx, `SELECT user_id, issue_id FROM tokens WHERE token = $1 AND kind = $2`, []any{token, kind}, &userID, idCol{&issueID})
	if err != nil {
		return 0, 0, fail(kind+" token", err)
	}
	return userID, issueID, nil
}

// CreateToken stores an unsubscribe token: whoever presents it may take
// user userID off issue issueID's nosy list (issueID 0: a token not tied to
// one issue). The caller makes the token unguessable. ErrDuplicate if the
// token exists (of either kind).
func (c *conn) CreateToken(ctx context.Context, token string, userID, issueID int64) error {
	return c.createToken(ctx, tokenUnsubscribe, token, userID, issueID)
}

// Token returns the user and issue of an unsubscribe token, or ErrNotFound
// (also for a bounce token).
func (c *conn) Token(ctx context.Context, token string) (userID, issueID int64, err error) {
	return c.token(ctx, tokenUnsubscribe, token)
}

// CreateBounceToken stores a bounce token, the TOKEN of the envelope sender
// address+bounce-TOKEN@domain of a notification to user userID about issue
// issueID (0: none), so a bounce names who bounced. ErrDuplicate if the
// token exists (of either kind).
func (c *conn) CreateBounceToken(ctx context.Context, token string, userID, issueID int64) error {
	return c.createToken(ctx, tokenBounce, token, userID, issueID)
}

// BounceToken returns the user and issue of a bounce token, or ErrNotFound
// (also for an unsubscribe token).
func (c *conn) BounceToken(ctx context.Context, token string) (userID, issueID int64, err error) {
	return c.token(ctx, tokenBounce, token)
}
