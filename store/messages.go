package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Message is one message of an issue.
type Message struct {
	ID       int64
	IssueID  int64
	AuthorID int64
	Date     time.Time
	// MessageID, InReplyTo and References are compared byte for byte; keep
	// them in one form (trackerd keeps the angle brackets).
	MessageID  string
	InReplyTo  string
	References []string
	// Content is the text as stored and shown: quotes and signature cut.
	Content string
	// FullText is the text before cutting.
	FullText string
	Summary  string
	// InboundID is the raw archive row the message came from; 0 = none.
	InboundID int64
}

const messageCols = `id, issue_id, author_id, date, message_id, in_reply_to, refs, content, full_text, summary, inbound_id`

type messageRow struct {
	m    Message
	refs string
}

func (r *messageRow) dest() []any {
	return []any{&r.m.ID, &r.m.IssueID, &r.m.AuthorID, timeCol{&r.m.Date}, &r.m.MessageID, &r.m.InReplyTo,
		&r.refs, &r.m.Content, &r.m.FullText, &r.m.Summary, idCol{&r.m.InboundID}}
}

func (r *messageRow) message() Message {
	m := r.m
	m.References = splitList(r.refs, " ")
	return m
}

// hasSpace reports whether s holds white space or control characters,
// which no Message-ID or address may.
func hasSpace(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// CreateMessage stores m and sets m.ID; Date defaults to now. It changes
// nothing else: the caller updates the issue's activity. MessageID is
// required (generate one for mail that has none).
//
// ErrDuplicate: this author already filed this Message-ID (see
// FiledMessage); nothing is written then.
func (c *conn) CreateMessage(ctx context.Context, m *Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	date := orNow(m.Date)
	var id int64
	err := c.atomic(ctx, func(c *conn) error {
		var err error
		id, err = c.insertMessage(ctx, m, date)
		return err
	})
	if err != nil {
		return fail("create message", err)
	}
	m.ID, m.Date = id, date
	return nil
}

// insertMessage writes m, dated date, and returns its id (CreateMessage
// without the checks).
func (c *conn) insertMessage(ctx context.Context, m *Message, date time.Time) (int64, error) {
	q := insertMessage(`$1, $2, $3, $4, $5, $6, $7, $8, $9, $10`)
	args := messageArgs(c.d, m, date)
	if c.d == postgresDialect {
		// The content's words join the issue's search row in the same
		// statement (see words.go); the row is there from CreateIssue,
		// or from the migration.
		q = `WITH m AS (` + q + `, issue_id),
			w AS (INSERT INTO issue_words (issue_id, words) SELECT issue_id, $11::tsvector FROM m
				ON CONFLICT (issue_id) DO UPDATE SET words = issue_words.words || EXCLUDED.words)
			SELECT id FROM m`
		args = append(args, textWords(m.Content))
	}
	var id int64
	err := c.get(ctx, q, args, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, duplicateMessage(m)
	}
	if err == nil && c.fts != nil {
		c.fts.message(id)
	}
	return id, err
}

// duplicateMessage is the error for m when its author filed its
// Message-ID before.
func duplicateMessage(m *Message) error {
	return fmt.Errorf("Message-ID %s from user %d: %w", m.MessageID, m.AuthorID, ErrDuplicate)
}

// checkMessage refuses what CreateMessage must not store.
func checkMessage(m *Message) error {
	switch {
	case m.MessageID == "":
		return fail("create message", errors.New("empty Message-ID"))
	case hasSpace(m.MessageID):
		return fail("create message", fmt.Errorf("Message-ID %q contains white space", m.MessageID))
	}
	for _, r := range m.References {
		if r == "" || hasSpace(r) {
			return fail("create message", fmt.Errorf("reference %q is empty or contains white space", r))
		}
	}
	return nil
}

// insertMessage is the INSERT of a message whose values are the SQL
// expressions values, in messageArgs' order; it returns the new id, or no
// row when the author filed that Message-ID before.
func insertMessage(values string) string {
	return `INSERT INTO messages (issue_id, author_id, date, message_id, in_reply_to, refs, content, full_text, summary, inbound_id)
		VALUES (` + values + `) ON CONFLICT DO NOTHING RETURNING id`
}

// messageArgs are m's column values in the order of insertMessage.
func messageArgs(d dialect, m *Message, date time.Time) []any {
	return []any{m.IssueID, m.AuthorID, d.tm(date), m.MessageID, m.InReplyTo, strings.Join(m.References, " "),
		m.Content, m.FullText, m.Summary, nullID(m.InboundID)}
}

func (c *conn) message(ctx context.Context, op, where string, args ...any) (*Message, error) {
	var r messageRow
	if err := c.get(ctx, `SELECT `+messageCols+` FROM messages `+where, args, r.dest()...); err != nil {
		return nil, fail(op, err)
	}
	m := r.message()
	return &m, nil
}

// Message returns message id, or ErrNotFound.
func (c *conn) Message(ctx context.Context, id int64) (*Message, error) {
	return c.message(ctx, fmt.Sprintf("message %d", id), `WHERE id = $1`, id)
}

// MessageByMessageID returns the message stored with this Message-ID, for
// threading (In-Reply-To, References); if several authors used it, the
// first stored. ErrNotFound if none.
func (c *conn) MessageByMessageID(ctx context.Context, messageID string) (*Message, error) {
	return c.message(ctx, "message by Message-ID "+messageID, `WHERE message_id = $1 ORDER BY id LIMIT 1`, messageID)
}

// FiledMessage returns the message this author already filed with this
// Message-ID, or ErrNotFound: the idempotency check of ingest.
func (c *conn) FiledMessage(ctx context.Context, messageID string, authorID int64) (*Message, error) {
	return c.message(ctx, "filed message "+messageID, `WHERE message_id = $1 AND author_id = $2`, messageID, authorID)
}

// Messages returns issue issueID's messages ordered by date, then id.
func (c *conn) Messages(ctx context.Context, issueID int64) ([]Message, error) {
	var out []Message
	err := c.each(ctx, `SELECT `+messageCols+` FROM messages WHERE issue_id = $1 ORDER BY date, id`, []any{issueID}, func(rows *sql.Rows) error {
		var r messageRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.message())
		return nil
	})
	if err != nil {
		return nil, fail(fmt.Sprintf("messages of issue %d", issueID), err)
	}
	return out, nil
}

// File is an attachment of a message.
type File struct {
	ID        int64
	MessageID int64 // the stored message's id, not a Message-ID header
	Name      string
	Type      string // MIME type
	Size      int64  // computed by CreateFile
	SHA256    string // hex, computed by CreateFile
	Data      []byte
}

// CreateFile stores f, computing its Size and SHA256, and sets f.ID. The
// store keeps its own copy of Data.
func (c *conn) CreateFile(ctx context.Context, f *File) error {
	sum := sha256.Sum256(f.Data)
	sha, size := hex.EncodeToString(sum[:]), int64(len(f.Data))
	var id int64
	err := c.get(ctx, `INSERT INTO files (message_id, name, content_type, size, sha256, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		[]any{f.MessageID, f.Name, f.Type, size, sha, nonNil(f.Data)}, &id)
	if err != nil {
		return fail("create file", err)
	}
	f.ID, f.Size, f.SHA256 = id, size, sha
	return nil
}

// Files returns message messageID's files ordered by id, without Data.
func (c *conn) Files(ctx context.Context, messageID int64) ([]File, error) {
	return c.files(ctx, fmt.Sprintf("files of message %d", messageID),
		`SELECT id, message_id, name, content_type, size, sha256 FROM files WHERE message_id = $1 ORDER BY id`, messageID)
}

// files runs query, which selects a file's id, message_id, name,
// content_type, size and sha256, and returns every row, without Data;
// what names the rows in an error.
func (c *conn) files(ctx context.Context, what, query string, args ...any) ([]File, error) {
	var out []File
	err := c.each(ctx, query, args, func(rows *sql.Rows) error {
		var f File
		if err := rows.Scan(&f.ID, &f.MessageID, &f.Name, &f.Type, &f.Size, &f.SHA256); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fail(what, err)
	}
	return out, nil
}

// File returns file id with its Data, or ErrNotFound.
func (c *conn) File(ctx context.Context, id int64) (*File, error) {
	var f File
	err := c.get(ctx, `SELECT id, message_id, name, content_type, size, sha256, data FROM files WHERE id = $1`, []any{id},
		&f.ID, &f.MessageID, &f.Name, &f.Type, &f.Size, &f.SHA256, &f.Data)
	if err != nil {
		return nil, fail(fmt.Sprintf("file %d", id), err)
	}
	if f.Data == nil {
		f.Data = []byte{}
	}
	return &f, nil
}

// Change is one entry of an issue's journal: a property that changed.
// Multi-valued properties record what was added and removed in their own
// notation (e.g. New "+a -b"); the store keeps the text as given.
type Change struct {
	ID        int64
	IssueID   int64
	MessageID int64 // the stored message that made the change; 0 = none
	ActorID   int64 // 0 = the system
	At        time.Time
	Property  string
	Old, New  string
}

// AddChange appends ch to its issue's journal and sets ch.ID; At defaults
// to now.
func (c *conn) AddChange(ctx context.Context, ch *Change) error {
	at := orNow(ch.At)
	var id int64
	err := c.get(ctx, `INSERT INTO changes (issue_id, message_id, actor_id, at, property, old_value, new_value)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		[]any{ch.IssueID, nullID(ch.MessageID), nullID(ch.ActorID), c.d.tm(at), ch.Property, ch.Old, ch.New}, &id)
	if err != nil {
		return fail("add change", err)
	}
	ch.ID, ch.At = id, at
	return nil
}

// AddChanges appends chs to their issues' journals in one statement, in
// the order given, and sets each one's ID and At (which defaults to now):
// what AddChange does for each, with one round trip for all.
func (c *conn) AddChanges(ctx context.Context, chs []*Change) error {
	switch len(chs) {
	case 0:
		return nil
	case 1:
		return c.AddChange(ctx, chs[0])
	}
	var a args
	vals := make([]string, len(chs))
	ats := make([]time.Time, len(chs))
	for i, ch := range chs {
		ats[i] = orNow(ch.At)
		vals[i] = "(" + a.add(ch.IssueID) + ", " + a.add(nullID(ch.MessageID)) + ", " + a.add(nullID(ch.ActorID)) + ", " +
			a.add(c.d.tm(ats[i])) + ", " + a.add(ch.Property) + ", " + a.add(ch.Old) + ", " + a.add(ch.New) + ")"
	}
	ids := make([]int64, 0, len(chs))
	err := c.each(ctx, `INSERT INTO changes (issue_id, message_id, actor_id, at, property, old_value, new_value) VALUES `+
		strings.Join(vals, ", ")+` RETURNING id`, a, func(rows *sql.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err == nil && len(ids) != len(chs) {
		err = fmt.Errorf("%d ids returned for %d rows", len(ids), len(chs))
	}
	if err != nil {
		return fail("add changes", err)
	}
	// Both databases number the rows of one INSERT in the order of its
	// VALUES; RETURNING need not list them in that order.
	slices.Sort(ids)
	for i, ch := range chs {
		ch.ID, ch.At = ids[i], ats[i]
	}
	return nil
}

// Changes returns issue issueID's journal ordered by time, then id.
func (c *conn) Changes(ctx context.Context, issueID int64) ([]Change, error) {
	var out []Change
	err := c.each(ctx, `SELECT id, issue_id, message_id, actor_id, at, property, old_value, new_value
		FROM changes WHERE issue_id = $1 ORDER BY at, id`, []any{issueID}, func(rows *sql.Rows) error {
		var ch Change
		if err := rows.Scan(&ch.ID, &ch.IssueID, idCol{&ch.MessageID}, idCol{&ch.ActorID}, timeCol{&ch.At},
			&ch.Property, &ch.Old, &ch.New); err != nil {
			return err
		}
		out = append(out, ch)
		return nil
	})
	if err != nil {
		return nil, fail(fmt.Sprintf("changes of issue %d", issueID), err)
	}
	return out, nil
}
