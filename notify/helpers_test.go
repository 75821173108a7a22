package notify

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	_ "github.com/lib/pq" // the "postgres" driver, for dropping test schemas

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/store"
)

// testConfig is the default configuration for a tracker named "Example
// Tracker" at issues@example.org, with its data in a temporary directory.
func testConfig(t testing.TB) *config.Config {
	cfg := config.Default()
	cfg.Tracker.Name = "Example Tracker"
	cfg.Tracker.Address = "issues@example.org"
	cfg.Tracker.WebURL = "https://issues.example.org/"
	cfg.Tracker.DataDir = t.TempDir()
	return cfg
}

// fixture is a small tracker: alice opened issue "Crash when saving" with
// the first message; bob and carol are users; dave@example.net is no one.
type fixture struct {
	st                *store.Store
	cfg               *config.Config
	alice, bob, carol *store.User
	issue             *store.Issue
	first             *store.Message
	firstDate         time.Time
}

func newFixture(t *testing.T, st *store.Store) *fixture {
	t.Helper()
	f := &fixture{st: st, cfg: testConfig(t)}
	f.alice = mustUser(t, st, "alice@example.com", "Alice Example")
	f.bob = mustUser(t, st, "bob@example.com", "Bob Builder")
	f.carol = mustUser(t, st, "carol@example.com", "")
	f.issue = &store.Issue{Title: "Crash when saving", Status: "unread", Priority: "bug", CreatorID: f.alice.ID}
	if err := st.CreateIssue(t.Context(), f.issue); err != nil {
		t.Fatalf("CreateIssue: %v", err)
	}
	f.firstDate = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	f.first = f.message(t, f.alice, "<first@example.com>", "", "It crashes when I save.\nEvery time.", f.firstDate)
	return f
}

func mustUser(t *testing.T, st *store.Store, addr, name string) *store.User {
	t.Helper()
	u := &store.User{Address: addr, RealName: name, Roles: []string{"user"}}
	if err := st.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", addr, err)
	}
	return u
}

func (f *fixture) message(t *testing.T, author *store.User, id, inReplyTo, content string, date time.Time) *store.Message {
	t.Helper()
	m := &store.Message{IssueID: f.issue.ID, AuthorID: author.ID, Date: date, MessageID: id, InReplyTo: inReplyTo, Content: content, FullText: content}
	if inReplyTo != "" {
		m.References = []string{inReplyTo}
	}
	if err := f.st.CreateMessage(t.Context(), m); err != nil {
		t.Fatalf("CreateMessage(%s): %v", id, err)
	}
	return m
}

// row returns an unsaved notify row for message m (nil: change-only) to
// recipient.
func (f *fixture) row(t testing.TB, m *store.Message, recipient string, p NotifyPayload) *store.Outbox {
	t.Helper()
	payload, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	o := &store.Outbox{Kind: KindNotify, IssueID: f.issue.ID, Recipient: recipient, Payload: payload,
		Created: time.Date(2024, 3, 2, 9, 30, 0, 0, time.UTC)}
	if m != nil {
		o.MsgID = m.ID
	}
	return o
}

func (f *fixture) render(t *testing.T, row *store.Outbox) *Mail {
	t.Helper()
	m, err := Render(t.Context(), f.st, f.cfg, row)
	if err != nil {
		t.Fatalf("Render(%s to %s): %v", row.Kind, row.Recipient, err)
	}
	checkWire(t, m.Data)
	return m
}

// checkWire asserts the mail is what may go on the wire: 7-bit, CRLF line
// ends only, header lines within 78 characters, body lines within 998.
func checkWire(t *testing.T, data []byte) {
	t.Helper()
	inHeader := true
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Errorf("line %d does not end in CRLF: %q", i+1, line)
			continue
		}
		l := line[:len(line)-2]
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("line %d holds a bare CR: %q", i+1, line)
		}
		for _, c := range l {
			if c >= 0x80 || (c < ' ' && c != '\t') {
				t.Errorf("line %d holds byte %#x: %q", i+1, c, line)
				break
			}
		}
		if len(l) == 0 {
			inHeader = false
		}
		if inHeader && len(l) > 78 {
			t.Errorf("header line %d is %d characters long: %q", i+1, len(l), l)
		}
		if len(l) > 998 {
			t.Errorf("line %d is %d characters long", i+1, len(l))
		}
	}
}

// parsed is a mail read back with go-message.
type parsed struct {
	h     mail.Header
	text  string // the first inline text part, decoded
	files []parsedFile
}

type parsedFile struct {
	name, ctype string
	data        []byte
}

func parseMail(t *testing.T, data []byte) *parsed {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("mail.CreateReader: %v\n%s", err, data)
	}
	defer mr.Close()
	p := &parsed{h: mr.Header}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v\n%s", err, data)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			if p.text == "" {
				p.text = string(body)
			}
		case *mail.AttachmentHeader:
			name, err := h.Filename()
			if err != nil {
				t.Fatalf("attachment file name: %v", err)
			}
			ct, _, _ := h.ContentType()
			p.files = append(p.files, parsedFile{name: name, ctype: ct, data: body})
		}
	}
	return p
}

func (p *parsed) get(key string) string { return p.h.Get(key) }

// fields returns how many times key occurs in the header.
func (p *parsed) fields(key string) int { return len(p.h.Values(key)) }
