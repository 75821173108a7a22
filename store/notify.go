package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Batch reads and writes for the notifier, which renders a few hundred
// outbox rows at once: one statement for many rows instead of one each.

// FirstMessage returns the issue's first message (by date, then id, as
// Messages orders them), or ErrNotFound when it has none.
func (c *conn) FirstMessage(ctx context.Context, issueID int64) (*Message, error) {
	return c.message(ctx, fmt.Sprintf("first message of issue %d", issueID), `WHERE issue_id = $1 ORDER BY date, id LIMIT 1`, issueID)
}

// UsersByAddresses returns the users that own addrs (primary or
// alternate addresses, compared case-insensitively), keyed by the
// lower-cased address asked for; addresses of no user are absent.
func (c *conn) UsersByAddresses(ctx context.Context, addrs []string) (map[string]*User, error) {
	out := make(map[string]*User, len(addrs))
	seen := map[string]bool{}
	var lower []string
	for _, a := range addrs {
		l := strings.ToLower(strings.TrimSpace(a))
		if l != "" && !seen[l] {
			seen[l] = true
			lower = append(lower, l)
		}
	}
	for len(lower) > 0 {
		n := min(len(lower), idChunk)
		ph := make([]string, n)
		args := make([]any, n)
		for i, l := range lower[:n] {
			ph[i] = "$" + strconv.Itoa(i+1)
			args[i] = l
		}
		err := c.each(ctx, `SELECT a.address_lower, `+userCols+` FROM addresses a JOIN users u ON u.id = a.user_id WHERE a.address_lower IN (`+strings.Join(ph, ", ")+`)`,
			args, func(rows *sql.Rows) error {
				var key string
				var r userRow
				if err := rows.Scan(append([]any{&key}, r.dest()...)...); err != nil {
					return err
				}
				u := r.user()
				out[key] = &u
				return nil
			})
		if err != nil {
			return nil, fail("users by addresses", err)
		}
		lower = lower[n:]
	}
	return out, nil
}

// TokenRow is one stored token, of either kind.
type TokenRow struct {
	Token   string
	Bounce  bool // a bounce token; else an unsubscribe token
	UserID  int64
	IssueID int64 // 0 = none
}

func (t TokenRow) kind() string {
	if t.Bounce {
		return tokenBounce
	}
	return tokenUnsubscribe
}

// Tokens returns the stored rows of those of tokens that exist, keyed by
// token.
func (c *conn) Tokens(ctx context.Context, tokens []string) (map[string]TokenRow, error) {
	out := make(map[string]TokenRow, len(tokens))
	for len(tokens) > 0 {
		n := min(len(tokens), idChunk)
		ph := make([]string, n)
		args := make([]any, n)
		for i, t := range tokens[:n] {
			ph[i] = "$" + strconv.Itoa(i+1)
			args[i] = t
		}
		err := c.each(ctx, `SELECT token, kind, user_id, issue_id FROM tokens WHERE token IN (`+strings.Join(ph, ", ")+`)`, args,
			func(rows *sql.Rows) error {
				var t TokenRow
				var kind string
				if err := rows.Scan(&t.Token, &kind, &t.UserID, idCol{&t.IssueID}); err != nil {
					return err
				}
				t.Bounce = kind == tokenBounce
				out[t.Token] = t
				return nil
			})
		if err != nil {
			return nil, fail("tokens", err)
		}
		tokens = tokens[n:]
	}
	return out, nil
}

// CreateTokens stores every token of ts that does not exist yet, all in
// one transaction on a Store; existing tokens are left as they are (check
// them with Tokens).
func (c *conn) CreateTokens(ctx context.Context, ts []TokenRow) error {
	created := now()
	err := c.atomic(ctx, func(c *conn) error {
		for _, t := range ts {
			if t.Token == "" || strings.ContainsFunc(t.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return fmt.Errorf("token %q is empty or contains white space", t.Token)
			}
			if _, err := c.exec(ctx, `INSERT INTO tokens (token, kind, user_id, issue_id, created) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
				t.Token, t.kind(), t.UserID, nullID(t.IssueID), c.d.tm(created)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Sprintf("create %d tokens", len(ts)), err)
	}
	return nil
}

// MessagesByIDs returns the messages ids names that exist, keyed by id.
func (c *conn) MessagesByIDs(ctx context.Context, ids []int64) (map[int64]*Message, error) {
	out := make(map[int64]*Message, len(ids))
	err := eachChunk(ids, 0, func(ph string, args []any) error {
		return c.each(ctx, `SELECT `+messageCols+` FROM messages WHERE id IN (`+ph+`)`, args, func(rows *sql.Rows) error {
			var r messageRow
			if err := rows.Scan(r.dest()...); err != nil {
				return err
			}
			m := r.message()
			out[m.ID] = &m
			return nil
		})
	})
	if err != nil {
		return nil, fail("messages by ids", err)
	}
	return out, nil
}

// FilesOfMessages returns the files of the messages ids (without Data,
// ordered by id as Files orders them), keyed by message id; messages
// without files are absent.
func (c *conn) FilesOfMessages(ctx context.Context, ids []int64) (map[int64][]File, error) {
	out := map[int64][]File{}
	err := eachChunk(ids, 0, func(ph string, args []any) error {
		return c.each(ctx, `SELECT id, message_id, name, content_type, size, sha256 FROM files WHERE message_id IN (`+ph+`) ORDER BY id`,
			args, func(rows *sql.Rows) error {
				var f File
				if err := rows.Scan(&f.ID, &f.MessageID, &f.Name, &f.Type, &f.Size, &f.SHA256); err != nil {
					return err
				}
				out[f.MessageID] = append(out[f.MessageID], f)
				return nil
			})
	})
	if err != nil {
		return nil, fail("files of messages", err)
	}
	return out, nil
}
