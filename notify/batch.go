package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/trackerd/trackerd/store"
)

// batchReader is the Reader the Worker renders a claimed batch with: it
// remembers what it read for the length of the batch (the rows of one
// message share its issue, message, files and author), reads the
// recipients and their tokens for the whole batch in two statements
// (prefetch), and collects the tokens to create so that they are written
// in one transaction (flush) before any mail of the batch is sent.
type batchReader struct {
	st    *store.Store
	known *tokenSet

	issues   map[int64]*store.Issue
	messages map[int64]*store.Message
	first    map[int64]*store.Message // nil value: the issue has no message
	files    map[int64][]store.File
	file     map[int64]*store.File
	byID     map[int64]*store.User
	byAddr   map[string]*store.User // lower-cased; nil value: no such user
	tokens   map[string]store.TokenRow
	pending  []store.TokenRow
}

var _ Reader = (*batchReader)(nil)

func newBatchReader(st *store.Store, known *tokenSet) *batchReader {
	return &batchReader{st: st, known: known,
		issues: map[int64]*store.Issue{}, messages: map[int64]*store.Message{}, first: map[int64]*store.Message{},
		files: map[int64][]store.File{}, file: map[int64]*store.File{}, byID: map[int64]*store.User{},
		byAddr: map[string]*store.User{}, tokens: map[string]store.TokenRow{}}
}

// prefetch reads the messages of rows with their files, the recipients,
// and the tokens the notifications to them will carry, in a few
// statements.
func (b *batchReader) prefetch(ctx context.Context, rows []store.Outbox, key []byte) error {
	var addrs []string
	var msgIDs []int64
	seenMsg := map[int64]bool{}
	for i := range rows {
		if rows[i].Kind != KindNotify {
			continue
		}
		addrs = append(addrs, rows[i].Recipient)
		if id := rows[i].MsgID; id != 0 && !seenMsg[id] {
			seenMsg[id] = true
			msgIDs = append(msgIDs, id)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	if len(msgIDs) > 0 {
		msgs, err := b.st.MessagesByIDs(ctx, msgIDs)
		if err != nil {
			return err
		}
		files, err := b.st.FilesOfMessages(ctx, msgIDs)
		if err != nil {
			return err
		}
		for id, m := range msgs {
			b.messages[id] = m
			b.files[id] = files[id] // nil: no files
		}
	}
	users, err := b.st.UsersByAddresses(ctx, addrs)
	if err != nil {
		return err
	}
	var toks []string
	want := map[string]store.TokenRow{}
	for i := range rows {
		r := &rows[i]
		if r.Kind != KindNotify {
			continue
		}
		l := strings.ToLower(strings.TrimSpace(r.Recipient))
		u := users[l]
		b.byAddr[l] = u
		if u == nil || key == nil {
			continue
		}
		b.byID[u.ID] = u
		for _, kind := range []string{kindUnsubscribe, kindBounce} {
			tok := deriveToken(key, kind, u.ID, r.IssueID)
			t := store.TokenRow{Token: tok, Bounce: kind == kindBounce, UserID: u.ID, IssueID: r.IssueID}
			if b.known.has(tok) {
				b.tokens[tok] = t
			} else if _, ok := want[tok]; !ok {
				want[tok] = t
				toks = append(toks, tok)
			}
		}
	}
	if len(toks) == 0 {
		return nil
	}
	found, err := b.st.Tokens(ctx, toks)
	if err != nil {
		return err
	}
	for tok, row := range found {
		b.tokens[tok] = row
		if row == want[tok] {
			b.known.add(tok)
		}
	}
	return nil
}

// flush creates the tokens the batch's mails name and the store lacks.
func (b *batchReader) flush(ctx context.Context) error {
	if len(b.pending) == 0 {
		return nil
	}
	if err := b.st.CreateTokens(ctx, b.pending); err != nil {
		return err
	}
	for _, t := range b.pending {
		b.known.add(t.Token)
	}
	b.pending = nil
	return nil
}

func (b *batchReader) Issue(ctx context.Context, id int64) (*store.Issue, error) {
	if is, ok := b.issues[id]; ok {
		return is, nil
	}
	is, err := b.st.Issue(ctx, id)
	if err == nil {
		b.issues[id] = is
	}
	return is, err
}

func (b *batchReader) Message(ctx context.Context, id int64) (*store.Message, error) {
	if m, ok := b.messages[id]; ok {
		return m, nil
	}
	m, err := b.st.Message(ctx, id)
	if err == nil {
		b.messages[id] = m
	}
	return m, err
}

func (b *batchReader) FirstMessage(ctx context.Context, issueID int64) (*store.Message, error) {
	if m, ok := b.first[issueID]; ok {
		if m == nil {
			return nil, fmt.Errorf("first message of issue %d: %w", issueID, store.ErrNotFound)
		}
		return m, nil
	}
	m, err := b.st.FirstMessage(ctx, issueID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		b.first[issueID] = nil
	case err == nil:
		b.first[issueID] = m
	}
	return m, err
}

func (b *batchReader) Files(ctx context.Context, messageID int64) ([]store.File, error) {
	if fs, ok := b.files[messageID]; ok {
		return fs, nil
	}
	fs, err := b.st.Files(ctx, messageID)
	if err == nil {
		b.files[messageID] = fs
	}
	return fs, err
}

func (b *batchReader) File(ctx context.Context, id int64) (*store.File, error) {
	if f, ok := b.file[id]; ok {
		return f, nil
	}
	f, err := b.st.File(ctx, id)
	if err == nil {
		b.file[id] = f
	}
	return f, err
}

func (b *batchReader) UserByID(ctx context.Context, id int64) (*store.User, error) {
	if u, ok := b.byID[id]; ok {
		return u, nil
	}
	u, err := b.st.UserByID(ctx, id)
	if err == nil {
		b.byID[id] = u
	}
	return u, err
}

func (b *batchReader) UserByAddress(ctx context.Context, addr string) (*store.User, error) {
	l := strings.ToLower(strings.TrimSpace(addr))
	if u, ok := b.byAddr[l]; ok {
		if u == nil {
			return nil, fmt.Errorf("user by address %s: %w", addr, store.ErrNotFound)
		}
		return u, nil
	}
	u, err := b.st.UserByAddress(ctx, addr)
	if err == nil {
		b.byAddr[l] = u
	}
	return u, err
}

func (b *batchReader) Inbound(ctx context.Context, id int64) (*store.Inbound, error) {
	return b.st.Inbound(ctx, id)
}

func (b *batchReader) token(tok string, bounce bool) (int64, int64, error) {
	if t, ok := b.tokens[tok]; ok && t.Bounce == bounce {
		return t.UserID, t.IssueID, nil
	}
	return 0, 0, fmt.Errorf("token: %w", store.ErrNotFound)
}

func (b *batchReader) Token(_ context.Context, tok string) (int64, int64, error) {
	return b.token(tok, false)
}

func (b *batchReader) BounceToken(_ context.Context, tok string) (int64, int64, error) {
	return b.token(tok, true)
}

func (b *batchReader) create(tok string, bounce bool, userID, issueID int64) error {
	if _, ok := b.tokens[tok]; ok {
		return fmt.Errorf("token: %w", store.ErrDuplicate)
	}
	t := store.TokenRow{Token: tok, Bounce: bounce, UserID: userID, IssueID: issueID}
	b.tokens[tok] = t
	b.pending = append(b.pending, t)
	return nil
}

func (b *batchReader) CreateToken(_ context.Context, tok string, userID, issueID int64) error {
	return b.create(tok, false, userID, issueID)
}

func (b *batchReader) CreateBounceToken(_ context.Context, tok string, userID, issueID int64) error {
	return b.create(tok, true, userID, issueID)
}

// tokenSet remembers tokens known to be stored, so that later batches do
// not look them up again. It forgets everything when it grows past
// maxKnownTokens (a few MB), which only costs lookups.
type tokenSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

const maxKnownTokens = 100_000

func (s *tokenSet) has(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[tok]
	return ok
}

func (s *tokenSet) add(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxKnownTokens {
		s.m = map[string]struct{}{}
	}
	s.m[tok] = struct{}{}
}
