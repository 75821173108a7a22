package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver, for dropping test schemas

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// dataMethods is what the tests need from both *store.Store and *store.Tx.
type dataMethods interface {
	CreateUser(ctx context.Context, u *store.User) error
	CreateIssue(ctx context.Context, is *store.Issue) error
	CreateMessage(ctx context.Context, m *store.Message) error
}

func mustUser(t *testing.T, s dataMethods, addr string, alternates ...string) *store.User {
	t.Helper()
	u := &store.User{Address: addr, RealName: "Real " + addr, Alternates: alternates, Roles: []string{"user"}}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", addr, err)
	}
	return u
}

func mustIssue(t *testing.T, s dataMethods, title string, creator int64) *store.Issue {
	t.Helper()
	is := &store.Issue{Title: title, Status: "unread", Priority: "bug", CreatorID: creator, ActorID: creator}
	if err := s.CreateIssue(t.Context(), is); err != nil {
		t.Fatalf("CreateIssue(%q): %v", title, err)
	}
	return is
}

func mustMessage(t *testing.T, s dataMethods, issueID, authorID int64, messageID, content string) *store.Message {
	t.Helper()
	m := &store.Message{IssueID: issueID, AuthorID: authorID, MessageID: messageID, Content: content, FullText: content + "\n> quoted"}
	if err := s.CreateMessage(t.Context(), m); err != nil {
		t.Fatalf("CreateMessage(%s): %v", messageID, err)
	}
	return m
}

func wantErr(t *testing.T, call string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", call, err, target)
	}
}

func TestOpenOptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	bad := []store.Options{
		{Driver: "mysql", DSN: "x"},
		{Driver: "sqlite", DSN: ""},
		{Driver: "sqlite", DSN: ":memory:"},
		{Driver: "sqlite", DSN: "file:x.db?mode=memory"},
		{Driver: "sqlite", DSN: filepath.Join(dir, "a.db") + "?_pragma=foreign_keys(0)"},
		{Driver: "sqlite", DSN: filepath.Join(dir, "b.db"), SQLiteSynchronous: "off"},
		{Driver: "sqlite", DSN: filepath.Join(dir, "c.db"), Schema: "x"},
		{Driver: "sqlite", DSN: filepath.Join(dir, "d.db"), QueryTimeout: -time.Second},
	}
	for _, o := range bad {
		if s, err := store.Open(ctx, o); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", o)
		}
	}

	// The parent directory is created; "normal" is accepted.
	path := filepath.Join(dir, "deep", "er", "t.db")
	s, err := store.Open(ctx, store.Options{Driver: "sqlite", DSN: path, SQLiteSynchronous: "NORMAL", MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("database directory: %v, %v; want mode 0750", fi.Mode(), err)
	}
	if got, err := store.QueryStrings(ctx, s, `PRAGMA synchronous`); err != nil || len(got) != 1 || got[0] != "1" {
		t.Errorf("PRAGMA synchronous = %v, %v; want 1 (NORMAL)", got, err)
	}
	if s.Driver() != "sqlite" {
		t.Errorf("Driver() = %q", s.Driver())
	}
}

func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := storetest.Open(t, storetest.Options(t, store.DriverSQLite))
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "10000",
		"synchronous":  "2", // FULL
	} {
		got, err := store.QueryStrings(ctx, s, `PRAGMA `+pragma)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("PRAGMA %s = %v, %v; want %s", pragma, got, err, want)
		}
	}
}

// TestSQLiteOpenWhileLocked: a second process opening a database that
// another one has just created and is migrating; setting WAL then answers
// SQLITE_BUSY at once, without the busy handler, so Open must try again
// rather than fail (seen in CI: `outbox list` beside a starting `import`).
func TestSQLiteOpenWhileLocked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "busy.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	// A new database (not yet WAL) with a write transaction open, as when
	// another process has just created it: switching to WAL needs the
	// exclusive lock while this connection holds a shared one, and SQLite
	// answers SQLITE_BUSY at once rather than risk a deadlock.
	if _, err := raw.ExecContext(ctx, `BEGIN IMMEDIATE; CREATE TABLE other (a INTEGER)`); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(500 * time.Millisecond)
		raw.ExecContext(context.Background(), `COMMIT`)
		raw.Close()
	}()
	o := storetest.Options(t, store.DriverSQLite)
	o.DSN = path
	s, err := store.Open(ctx, o)
	<-released
	if err != nil {
		t.Fatalf("Open while another connection held a write lock on a new database: %v", err)
	}
	s.Close()
}

func TestPostgresSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dsn, schema     string
		ssl, searchPath string
	}{
		{"host=db.example.org dbname=trackerd user=t", "", "disable", ""},
		{"postgres://t@db.example.org/trackerd", "s1", "disable", `"s1"`},
		{"postgres://t@db.example.org/trackerd?sslmode=verify-full", "", "verify-full", ""},
		{"host=db.example.org sslmode=require search_path=x", "", "require", "x"},
		{"host=db.example.org search_path=x", "My Schema", "disable", `"My Schema"`},
	} {
		ssl, app, sp, err := store.PostgresSettings(store.Options{Driver: "postgres", DSN: tc.dsn, Schema: tc.schema})
		if err != nil || ssl != tc.ssl || app != "trackerd" || sp != tc.searchPath {
			t.Errorf("PostgresSettings(%q, %q) = %q, %q, %q, %v; want %q, trackerd, %q", tc.dsn, tc.schema, ssl, app, sp, err, tc.ssl, tc.searchPath)
		}
	}
}

func TestPingStats(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		u := mustUser(t, s, "stats@example.org")
		is := mustIssue(t, s, "Stats", u.ID)
		mustMessage(t, s, is.ID, u.ID, "<stats@x>", "hello")
		if err := s.Enqueue(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, Recipient: "a@example.org"}); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertInbound(ctx, &store.Inbound{Source: "smtp", Raw: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if st.Driver != s.Driver() || st.SchemaVersion != store.LatestSchemaVersion() || st.Users != 1 || st.Issues != 1 ||
			st.Messages != 1 || st.Outbox["pending"] != 1 || st.Inbound["received"] != 1 || st.OpenConnections < 1 {
			t.Errorf("Stats = %+v", st)
		}
	})
}

func TestTxRollback(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		boom := errors.New("boom")
		err := s.Tx(ctx, func(tx *store.Tx) error {
			u := mustUser(t, tx, "gone@example.org")
			is := mustIssue(t, tx, "Gone", u.ID)
			mustMessage(t, tx, is.ID, u.ID, "<gone@x>", "gone")
			if err := tx.Enqueue(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, Recipient: "x@example.org"}); err != nil {
				return err
			}
			return boom
		})
		if err != boom {
			t.Fatalf("Tx = %v, want fn's own error", err)
		}
		assertEmpty(t, s)

		// A panic rolls back too, and goes on.
		func() {
			defer func() {
				if p := recover(); p != "kaboom" {
					t.Errorf("recovered %v, want kaboom", p)
				}
			}()
			_ = s.Tx(ctx, func(tx *store.Tx) error {
				mustUser(t, tx, "panic@example.org")
				panic("kaboom")
			})
		}()
		assertEmpty(t, s)

		// The store is still usable: no connection or lock was left behind.
		mustUser(t, s, "after@example.org")
	})
}

// assertEmpty checks that no user, issue, message or outbox row exists.
func assertEmpty(t *testing.T, s *store.Store) {
	t.Helper()
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != 0 || st.Issues != 0 || st.Messages != 0 || len(st.Outbox) != 0 {
		t.Errorf("after rollback: %d users, %d issues, %d messages, outbox %v; want none", st.Users, st.Issues, st.Messages, st.Outbox)
	}
}

// TestGroupCommit is the SMTP listener's group commit: several mails in one
// Tx, each in a Savepoint; a failing one is undone alone.
func TestGroupCommit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "author@example.org")
		first := mustIssue(t, s, "First", u.ID)
		mustMessage(t, s, first.ID, u.ID, "<dup@x>", "the original")

		bad := errors.New("bad mail")
		var kept []int64
		var errs []error
		err := s.Tx(ctx, func(tx *store.Tx) error {
			for i, mail := range []string{"<ok1@x>", "<dup@x>", "<fails@x>", "<ok2@x>"} {
				err := tx.Savepoint(ctx, func(tx *store.Tx) error {
					is := &store.Issue{Title: "Mail " + mail, Status: "unread", Priority: "bug", CreatorID: u.ID}
					if err := tx.CreateIssue(ctx, is); err != nil {
						return err
					}
					if err := tx.AddChange(ctx, &store.Change{IssueID: is.ID, ActorID: u.ID, Property: "title", New: is.Title}); err != nil {
						return err
					}
					m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: mail, Content: "body"}
					if err := tx.CreateMessage(ctx, m); err != nil {
						return err // <dup@x>: ErrDuplicate after the issue was written
					}
					if i == 2 {
						return bad // fails after writing an issue and a message
					}
					kept = append(kept, is.ID)
					return nil
				})
				errs = append(errs, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		if errs[0] != nil || !errors.Is(errs[1], store.ErrDuplicate) || errs[2] != bad || errs[3] != nil {
			t.Fatalf("savepoint errors = %v; want nil, ErrDuplicate, bad mail, nil", errs)
		}
		issues, err := s.ListIssues(ctx, store.IssueFilter{Sort: "id"})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, is := range issues {
			got = append(got, is.ID)
		}
		want := append([]int64{first.ID}, kept...)
		if !slices.Equal(got, want) {
			t.Errorf("issues after group commit = %v, want %v (the failed mails' issues undone)", got, want)
		}
		for _, mid := range []string{"<ok1@x>", "<ok2@x>"} {
			if _, err := s.MessageByMessageID(ctx, mid); err != nil {
				t.Errorf("MessageByMessageID(%s): %v", mid, err)
			}
		}
		if _, err := s.MessageByMessageID(ctx, "<fails@x>"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MessageByMessageID(<fails@x>) = %v, want ErrNotFound", err)
		}
		for _, id := range kept {
			if ch, err := s.Changes(ctx, id); err != nil || len(ch) != 1 {
				t.Errorf("Changes(%d) = %v, %v; want 1", id, ch, err)
			}
		}

		// Nested savepoints: the inner one is undone, the outer kept; an
		// inner one that succeeded before it stays (on PostgreSQL its
		// release goes with the next SAVEPOINT); a failing savepoint
		// after a kept outer one undoes only itself.
		err = s.Tx(ctx, func(tx *store.Tx) error {
			err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				mustUser(t, tx, "outer@example.org")
				if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
					mustUser(t, tx, "kept@example.org")
					return nil
				}); err != nil {
					return err
				}
				err := tx.Savepoint(ctx, func(tx *store.Tx) error {
					mustUser(t, tx, "inner@example.org")
					return bad
				})
				if err != bad {
					t.Errorf("inner Savepoint = %v, want bad", err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := tx.Savepoint(ctx, func(tx *store.Tx) error {
				mustUser(t, tx, "next@example.org")
				return bad
			}); err != bad {
				t.Errorf("next Savepoint = %v, want bad", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByAddress(ctx, "outer@example.org"); err != nil {
			t.Errorf("outer savepoint's user: %v", err)
		}
		for _, a := range []string{"inner@example.org", "next@example.org"} {
			if _, err := s.UserByAddress(ctx, a); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("failed savepoint's user %s: %v, want ErrNotFound", a, err)
			}
		}
		if _, err := s.UserByAddress(ctx, "kept@example.org"); err != nil {
			t.Errorf("kept inner savepoint's user: %v", err)
		}
	})
}

// TestTxUsableAfterSentinel: ErrDuplicate and ErrNotFound write nothing
// and leave the Tx usable on both storetest.Drivers (PostgreSQL would otherwise
// abort the whole transaction on a failed statement).
func TestTxUsableAfterSentinel(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		is := mustIssue(t, s, "Issue", alice.ID)
		mustMessage(t, s, is.ID, alice.ID, "<m@x>", "x")
		if err := s.CreateToken(ctx, "tok", alice.ID, is.ID); err != nil {
			t.Fatal(err)
		}
		err := s.Tx(ctx, func(tx *store.Tx) error {
			// The username is free, the alternate is taken: the user row
			// written first must go again.
			err := tx.CreateUser(ctx, &store.User{Username: "bob", Address: "bob@example.org", Alternates: []string{"ALICE@example.org"}})
			wantErr(t, "CreateUser(dup alternate)", err, store.ErrDuplicate)
			wantErr(t, "CreateUser(dup username)", tx.CreateUser(ctx, &store.User{Username: alice.Username, Address: "new@example.org"}), store.ErrDuplicate)
			wantErr(t, "CreateMessage(dup)", tx.CreateMessage(ctx, &store.Message{IssueID: is.ID, AuthorID: alice.ID, MessageID: "<m@x>"}), store.ErrDuplicate)
			wantErr(t, "CreateToken(dup)", tx.CreateToken(ctx, "tok", alice.ID, 0), store.ErrDuplicate)
			wantErr(t, "AddAddress(missing user)", tx.AddAddress(ctx, 999999, "x@example.org"), store.ErrNotFound)
			_, err = tx.AddNosy(ctx, 999999, alice.ID)
			wantErr(t, "AddNosy(missing issue)", err, store.ErrNotFound)
			wantErr(t, "UpdateIssue(missing)", tx.UpdateIssue(ctx, &store.Issue{ID: 999999, Title: "x"}), store.ErrNotFound)
			_, err = tx.Issue(ctx, 999999)
			wantErr(t, "Issue(missing)", err, store.ErrNotFound)
			// Still usable:
			mustUser(t, tx, "carol@example.org")
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		users, err := s.ListUsers(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var addrs []string
		for _, u := range users {
			addrs = append(addrs, u.Address)
		}
		if strings.Join(addrs, " ") != "alice@example.org carol@example.org" {
			t.Errorf("users after the Tx = %v; want alice and carol only (no half-created bob)", addrs)
		}
	})
}

// TestTxEverything writes all that one incoming mail may cause in one Tx:
// users, an issue, a message with files, journal entries, nosy and outbox
// rows, a token and the inbound row's outcome.
func TestTxEverything(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		raw := []byte("From: alice@example.org\r\nTo: issues@example.org\r\nSubject: Crash\r\n\r\nIt crashes.\r\n")
		in := &store.Inbound{Source: "smtp", EnvelopeFrom: "alice@example.org", EnvelopeTo: []string{"issues@example.org"}, Raw: raw}
		if err := s.InsertInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
		var issueID, msgID int64
		err := s.Tx(ctx, func(tx *store.Tx) error {
			alice := &store.User{Username: "alice", Address: "alice@example.org", RealName: "Alice"}
			bob := &store.User{Username: "bob", Address: "bob@example.org", RealName: "Bob"}
			for _, u := range []*store.User{alice, bob} {
				if err := tx.CreateUser(ctx, u); err != nil {
					return err
				}
			}
			is := &store.Issue{Title: "Crash", Status: "unread", Priority: "bug", AssigneeID: bob.ID, Keywords: []string{"crash"},
				CreatorID: alice.ID, ActorID: alice.ID}
			if err := tx.CreateIssue(ctx, is); err != nil {
				return err
			}
			m := &store.Message{IssueID: is.ID, AuthorID: alice.ID, MessageID: "<crash@example.org>", Content: "It crashes.",
				FullText: "It crashes.", InboundID: in.ID}
			if err := tx.CreateMessage(ctx, m); err != nil {
				return err
			}
			for _, f := range []*store.File{
				{MessageID: m.ID, Name: "trace.txt", Type: "text/plain", Data: []byte("panic: boom\n")},
				{MessageID: m.ID, Name: "shot.png", Type: "image/png", Data: []byte{0x89, 'P', 'N', 'G', 0, 0xff}},
			} {
				if err := tx.CreateFile(ctx, f); err != nil {
					return err
				}
			}
			for _, ch := range []*store.Change{
				{IssueID: is.ID, MessageID: m.ID, ActorID: alice.ID, Property: "title", New: "Crash"},
				{IssueID: is.ID, MessageID: m.ID, ActorID: alice.ID, Property: "assignedto", New: "bob"},
			} {
				if err := tx.AddChange(ctx, ch); err != nil {
					return err
				}
			}
			for _, u := range []*store.User{alice, bob} {
				if _, err := tx.AddNosy(ctx, is.ID, u.ID); err != nil {
					return err
				}
			}
			if err := tx.Enqueue(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, MsgID: m.ID, Recipient: bob.Address}); err != nil {
				return err
			}
			if err := tx.CreateToken(ctx, "unsub-bob-1", bob.ID, is.ID); err != nil {
				return err
			}
			in.Status, in.IssueID, in.MsgID, in.MessageID = store.InboundFiled, is.ID, m.ID, m.MessageID
			if err := tx.UpdateInbound(ctx, in); err != nil {
				return err
			}
			issueID, msgID = is.ID, m.ID
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}

		is, err := s.Issue(ctx, issueID)
		if err != nil || is.Title != "Crash" || strings.Join(is.Keywords, ",") != "crash" {
			t.Errorf("Issue = %+v, %v", is, err)
		}
		if ms, err := s.Messages(ctx, issueID); err != nil || len(ms) != 1 || ms[0].ID != msgID || ms[0].InboundID != in.ID {
			t.Errorf("Messages = %+v, %v", ms, err)
		}
		if fs, err := s.Files(ctx, msgID); err != nil || len(fs) != 2 {
			t.Errorf("Files = %+v, %v", fs, err)
		}
		if chs, err := s.Changes(ctx, issueID); err != nil || len(chs) != 2 {
			t.Errorf("Changes = %+v, %v", chs, err)
		}
		if ns, err := s.Nosy(ctx, issueID); err != nil || len(ns) != 2 {
			t.Errorf("Nosy = %+v, %v", ns, err)
		}
		if ob, err := s.ListOutbox(ctx, store.OutboxFilter{Status: "pending"}); err != nil || len(ob) != 1 || ob[0].MsgID != msgID {
			t.Errorf("ListOutbox = %+v, %v", ob, err)
		}
		if uid, iid, err := s.Token(ctx, "unsub-bob-1"); err != nil || iid != issueID || uid == 0 {
			t.Errorf("Token = %d, %d, %v", uid, iid, err)
		}
		if got, err := s.Inbound(ctx, in.ID); err != nil || got.Status != "filed" || got.IssueID != issueID || got.MsgID != msgID ||
			got.MessageID != "<crash@example.org>" || string(got.Raw) != string(raw) {
			t.Errorf("Inbound = %+v, %v", got, err)
		}
	})
}

// TestUniqueViolation: either driver's unique-constraint error becomes
// ErrDuplicate (for races that ON CONFLICT does not cover); other
// constraint errors do not.
func TestUniqueViolation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		err := store.ExecRaw(ctx, s, `INSERT INTO addresses (user_id, address, address_lower, is_primary) VALUES ($1, 'X', 'alice@example.org', FALSE)`, u.ID)
		if err == nil || !store.IsDuplicateError(err) {
			t.Errorf("duplicate address_lower: %v; want a unique violation", err)
		}
		var now any = time.Now()
		if s.Driver() == store.DriverSQLite {
			now = time.Now().UnixMicro()
		}
		err = store.ExecRaw(ctx, s, `INSERT INTO users (username, username_lower, created) VALUES ($1, $1, $2)`, u.Username, now)
		if err == nil || !store.IsDuplicateError(err) {
			t.Errorf("duplicate username: %v; want a unique violation", err)
		}
		err = store.ExecRaw(ctx, s, `INSERT INTO outbox (kind, recipient, payload, status, next_attempt, created) VALUES ('x', 'y', $1, 'lost', $2, $2)`, []byte{}, now)
		if err == nil || store.IsDuplicateError(err) {
			t.Errorf("check violation: %v; want an error that is not ErrDuplicate", err)
		}
	})
}
