package store

import (
	"context"
	"database/sql"
	"errors"
)

// Cursor is how far an IMAP poller got in one mailbox.
type Cursor struct {
	Mailbox     string
	UIDValidity uint32
	LastUID     uint32
}

// PollCursor returns the mailbox's cursor, or the zero Cursor and no error
// for a mailbox never polled.
func (c *conn) PollCursor(ctx context.Context, mailbox string) (Cursor, error) {
	var v, last int64
	err := c.get(ctx, `SELECT uidvalidity, last_uid FROM poll_cursors WHERE mailbox = $1`, []any{mailbox}, &v, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, fail("poll cursor "+mailbox, err)
	}
	return Cursor{Mailbox: mailbox, UIDValidity: uint32(v), LastUID: uint32(last)}, nil
}

// SetPollCursor stores cur, replacing the mailbox's previous cursor.
func (c *conn) SetPollCursor(ctx context.Context, cur Cursor) error {
	_, err := c.exec(ctx, `INSERT INTO poll_cursors (mailbox, uidvalidity, last_uid) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid`,
		cur.Mailbox, int64(cur.UIDValidity), int64(cur.LastUID))
	if err != nil {
		return fail("set poll cursor "+cur.Mailbox, err)
	}
	return nil
}

// SeenUIDL reports whether a POP3 message with this UIDL was already
// taken from the mailbox.
func (c *conn) SeenUIDL(ctx context.Context, mailbox, uidl string) (bool, error) {
	var n int
	if err := c.get(ctx, `SELECT COUNT(*) FROM poll_uidls WHERE mailbox = $1 AND uidl = $2`, []any{mailbox, uidl}, &n); err != nil {
		return false, fail("seen uidl", err)
	}
	return n > 0, nil
}

// AddUIDL records a POP3 UIDL as taken; recording it twice is a no-op.
func (c *conn) AddUIDL(ctx context.Context, mailbox, uidl string) error {
	if _, err := c.exec(ctx, `INSERT INTO poll_uidls (mailbox, uidl) VALUES ($1, $2) ON CONFLICT DO NOTHING`, mailbox, uidl); err != nil {
		return fail("add uidl", err)
	}
	return nil
}

// ForgetUIDLs drops the mailbox's recorded UIDLs that are not in keep (the
// UIDLs the server still lists), so the table does not grow forever.
func (c *conn) ForgetUIDLs(ctx context.Context, mailbox string, keep []string) error {
	keepSet := make(map[string]bool, len(keep))
	for _, k := range keep {
		keepSet[k] = true
	}
	err := c.atomic(ctx, func(c *conn) error {
		var drop []string
		err := c.each(ctx, `SELECT uidl FROM poll_uidls WHERE mailbox = $1`, []any{mailbox}, func(rows *sql.Rows) error {
			var u string
			if err := rows.Scan(&u); err != nil {
				return err
			}
			if !keepSet[u] {
				drop = append(drop, u)
			}
			return nil
		})
		if err != nil {
			return err
		}
		const chunk = 500 // well under both databases' parameter limits
		for len(drop) > 0 {
			n := min(chunk, len(drop))
			var a args
			m := a.add(mailbox)
			if _, err := c.exec(ctx, `DELETE FROM poll_uidls WHERE mailbox = `+m+` AND uidl IN (`+a.list(drop[:n])+`)`, a...); err != nil {
				return err
			}
			drop = drop[n:]
		}
		return nil
	})
	if err != nil {
		return fail("forget uidls of "+mailbox, err)
	}
	return nil
}
