package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bounce is one bounce mail counted against a user: a DSN, or any mail to
// the VERP address of a notification sent to them.
type Bounce struct {
	ID        int64
	UserID    int64
	IssueID   int64  // the issue of the notification that bounced; 0 = none
	InboundID int64  // the bounce mail in the raw archive; 0 = none
	MessageID string // the bounce mail's Message-ID: a bounce is counted once
	Hard      bool   // a permanent failure (5.x.x)
	Status    string // RFC 3463 status code, "" if the bounce gave none
	Created   time.Time
}

// BounceResult is what RecordBounce did.
type BounceResult struct {
	// Counted is false when the same bounce mail was counted before for
	// this user (a DSN delivered twice).
	Counted bool
	// HardBounces is the user's count of hard bounces since their mail
	// last got through, after this one.
	HardBounces int
	// Bouncing is the user's bouncing flag after this bounce; Marked is
	// true when this bounce set it.
	Bouncing, Marked bool
}

// RecordBounce stores b (setting ID and Created) and counts it against
// the user: a hard bounce raises users.bounce_count, and the user is
// marked bouncing when the count reaches limit (limit ≤ 0: never). A soft
// bounce is stored but changes neither. A bounce whose (user, Message-ID)
// is already stored is not counted again. ErrNotFound if the user does
// not exist.
func (c *conn) RecordBounce(ctx context.Context, b *Bounce, limit int) (BounceResult, error) {
	var res BounceResult
	if strings.TrimSpace(b.MessageID) == "" {
		return res, fail("record bounce", errors.New("empty Message-ID"))
	}
	created := orNow(b.Created)
	err := c.atomic(ctx, func(c *conn) error {
		var before bool
		if err := c.get(ctx, `SELECT bouncing, bounce_count FROM users WHERE id = $1`, []any{b.UserID}, &before, &res.HardBounces); err != nil {
			return err
		}
		res.Bouncing = before
		var id int64
		err := c.get(ctx, `INSERT INTO bounces (user_id, issue_id, inbound_id, message_id, hard, status, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id`,
			[]any{b.UserID, nullID(b.IssueID), nullID(b.InboundID), b.MessageID, b.Hard, b.Status, c.d.tm(created)}, &id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // counted before
		}
		if err != nil {
			return err
		}
		b.ID, b.Created, res.Counted = id, created, true
		if !b.Hard {
			return nil
		}
		res.HardBounces++
		res.Bouncing = before || (limit > 0 && res.HardBounces >= limit)
		res.Marked = res.Bouncing && !before
		_, err = c.exec(ctx, `UPDATE users SET bounce_count = $1, bouncing = $2 WHERE id = $3`, res.HardBounces, res.Bouncing, b.UserID)
		return err
	})
	if err != nil {
		return BounceResult{}, fail(fmt.Sprintf("record bounce for user %d", b.UserID), err)
	}
	return res, nil
}

// ClearBouncing resets the user's bouncing flag and hard-bounce count,
// for when mail from their address got through (or an operator says so).
// It reports whether there was anything to clear; the stored bounces stay
// as history. ErrNotFound if the user does not exist.
func (c *conn) ClearBouncing(ctx context.Context, userID int64) (bool, error) {
	res, err := c.exec(ctx, `UPDATE users SET bouncing = $1, bounce_count = 0 WHERE id = $2 AND (bouncing OR bounce_count <> 0)`, false, userID)
	if err != nil {
		return false, fail(fmt.Sprintf("clear bouncing of user %d", userID), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail(fmt.Sprintf("clear bouncing of user %d", userID), err)
	}
	if n == 0 {
		if _, err := c.UserByID(ctx, userID); err != nil {
			return false, err
		}
	}
	return n > 0, nil
}

// Bounces returns the user's stored bounces, newest first, at most limit
// (0 = all).
func (c *conn) Bounces(ctx context.Context, userID int64, limit int) ([]Bounce, error) {
	var out []Bounce
	err := c.each(ctx, `SELECT id, user_id, issue_id, inbound_id, message_id, hard, status, created FROM bounces
		WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, []any{userID, limitArg(limit)}, func(rows *sql.Rows) error {
		var b Bounce
		if err := rows.Scan(&b.ID, &b.UserID, idCol{&b.IssueID}, idCol{&b.InboundID}, &b.MessageID, &b.Hard, &b.Status, timeCol{&b.Created}); err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fail(fmt.Sprintf("bounces of user %d", userID), err)
	}
	return out, nil
}
