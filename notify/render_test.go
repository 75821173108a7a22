package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestRenderThread checks every header of DESIGN §6 on the first message of
// an issue and on replies in its thread, for a recipient who is a user and
// one who is not.
func TestRenderThread(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		second := f.message(t, f.carol, "<second@example.com>", "<first@example.com>", "Me too.", f.firstDate.Add(time.Hour))
		third := f.message(t, f.alice, "<third@example.com>", "<second@example.com>", "Fixed in 1.2.", f.firstDate.Add(2*time.Hour))
		fourth := f.message(t, f.bob, "<fourth@example.com>", "", "Thanks!", f.firstDate.Add(3*time.Hour))
		issue := strconv.FormatInt(f.issue.ID, 10)

		type want struct {
			msg              *store.Message
			id, inReplyTo    string
			refs             []string
			author, greeting string
		}
		for _, w := range []want{
			{f.first, "<first@example.com>", "", nil, "Alice Example", "New submission from Alice Example:"},
			{second, "<second@example.com>", "<first@example.com>", []string{"<first@example.com>"}, "carol", "carol added the comment:"},
			{third, "<third@example.com>", "<second@example.com>", []string{"<first@example.com>", "<second@example.com>"}, "Alice Example", "Alice Example added the comment:"},
			{fourth, "<fourth@example.com>", "<first@example.com>", []string{"<first@example.com>"}, "Bob Builder", "Bob Builder added the comment:"},
		} {
			t.Run(w.id, func(t *testing.T) {
				p := NotifyPayload{AuthorID: w.msg.AuthorID, Changes: []string{"status: unread -> chatting", "keyword: +crash -ui"}}
				if w.msg == f.first {
					p = NotifyPayload{AuthorID: f.alice.ID, NewIssue: true, Changes: []string{"status: unread", "priority: bug"}}
				}
				toBob := f.render(t, f.row(t, w.msg, "bob@example.com", p))
				toDave := f.render(t, f.row(t, w.msg, "dave@example.net", p))
				again := f.render(t, f.row(t, w.msg, "bob@example.com", p))
				b, d := parseMail(t, toBob.Data), parseMail(t, toDave.Data)

				// Headers shared by every copy.
				for _, m := range []*parsed{b, d} {
					from, err := m.h.AddressList("From")
					if err != nil || len(from) != 1 {
						t.Fatalf("From = %q: %v", m.get("From"), err)
					}
					if got, want := from[0].Name, w.author+" (Example Tracker)"; got != want {
						t.Errorf("From name = %q, want %q", got, want)
					}
					if got := from[0].Address; got != "issues@example.org" {
						t.Errorf("From address = %q, want the tracker's", got)
					}
					checkHeader(t, m, "Reply-To", "<issues+"+issue+"@example.org>")
					checkHeader(t, m, "Subject", "[issue"+issue+"] Crash when saving")
					checkHeader(t, m, "Message-ID", w.id)
					checkHeader(t, m, "In-Reply-To", w.inReplyTo)
					checkHeader(t, m, "References", strings.Join(w.refs, " "))
					checkHeader(t, m, "List-Id", `"Example Tracker" <issues.example.org>`)
					checkHeader(t, m, "Precedence", "bulk")
					checkHeader(t, m, "Auto-Submitted", "auto-generated")
					checkHeader(t, m, "X-Auto-Response-Suppress", "All")
					checkHeader(t, m, "X-Tracker-Loop", "issues@example.org")
					checkHeader(t, m, "X-Tracker-Issue", issue)
					checkHeader(t, m, "X-Tracker-Status", "unread")
					checkHeader(t, m, "X-Tracker-Priority", "bug")
					checkHeader(t, m, "MIME-Version", "1.0")
					if got, err := m.h.Date(); err != nil || !got.Equal(w.msg.Date) {
						t.Errorf("Date = %v (%v), want the message's %v", got, err, w.msg.Date)
					}
					if strings.Contains(string(toBob.Data), "alice@example.com") {
						t.Errorf("the author's address appears in the mail")
					}
					for _, s := range []string{w.greeting + "\n\n" + w.msg.Content + "\n\n",
						"\n\n" + strings.Join(p.Changes, "\n") + "\n\n",
						"\n----------\nExample Tracker <https://issues.example.org/>\n<https://issues.example.org/issue/" + issue + ">\n"} {
						if !strings.Contains(crlfToLF(m.text), s) {
							t.Errorf("body lacks %q; body:\n%s", s, m.text)
						}
					}
				}
				if toBob.To != "bob@example.com" || toDave.To != "dave@example.net" {
					t.Errorf("envelope To = %q, %q", toBob.To, toDave.To)
				}
				if to, err := b.h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "bob@example.com" || to[0].Name != "Bob Builder" {
					t.Errorf("To = %q (%v), want Bob Builder <bob@example.com>", b.get("To"), err)
				}

				// Bob is a user: tokens, one-click unsubscribe, bounce address.
				unsub := regexp.MustCompile(`^<mailto:issues\+` + issue + `-unsubscribe@example\.org>, <https://issues\.example\.org/unsubscribe/([a-z2-7]{26})>$`).FindStringSubmatch(b.get("List-Unsubscribe"))
				if unsub == nil {
					t.Fatalf("List-Unsubscribe = %q", b.get("List-Unsubscribe"))
				}
				if u, i, err := st.Token(t.Context(), unsub[1]); err != nil || u != f.bob.ID || i != f.issue.ID {
					t.Errorf("Token(%s) = %d, %d, %v; want bob %d, issue %d", unsub[1], u, i, err, f.bob.ID, f.issue.ID)
				}
				checkHeader(t, b, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
				bounce := regexp.MustCompile(`^issues\+bounce-([a-z2-7]{26})@example\.org$`).FindStringSubmatch(toBob.EnvelopeFrom)
				if bounce == nil {
					t.Fatalf("EnvelopeFrom = %q", toBob.EnvelopeFrom)
				}
				if u, i, err := st.BounceToken(t.Context(), bounce[1]); err != nil || u != f.bob.ID || i != f.issue.ID {
					t.Errorf("BounceToken(%s) = %d, %d, %v; want bob %d, issue %d", bounce[1], u, i, err, f.bob.ID, f.issue.ID)
				}
				if bounce[1] == unsub[1] {
					t.Errorf("bounce and unsubscribe tokens are the same")
				}
				if again.EnvelopeFrom != toBob.EnvelopeFrom || parseMail(t, again.Data).get("List-Unsubscribe") != b.get("List-Unsubscribe") {
					t.Errorf("tokens not reused: %q / %q", again.EnvelopeFrom, toBob.EnvelopeFrom)
				}

				// Dave is no user: no token, mailto only, the plain address.
				checkHeader(t, d, "List-Unsubscribe", "<mailto:issues+"+issue+"-unsubscribe@example.org>")
				if d.fields("List-Unsubscribe-Post") != 0 {
					t.Errorf("List-Unsubscribe-Post without an https link")
				}
				if toDave.EnvelopeFrom != "issues@example.org" {
					t.Errorf("EnvelopeFrom for a non-user = %q, want the tracker address", toDave.EnvelopeFrom)
				}
			})
		}

		// One token per (user, issue): still one row each after all those
		// renders — the second issue gets its own.
		other := &store.Issue{Title: "Other", Status: "unread", Priority: "bug"}
		if err := st.CreateIssue(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		row := f.row(t, nil, "bob@example.com", NotifyPayload{AuthorID: f.alice.ID, NewIssue: true, Changes: []string{"status: unread"}})
		row.IssueID = other.ID
		m := f.render(t, row)
		tok := strings.TrimSuffix(strings.TrimPrefix(m.EnvelopeFrom, "issues+bounce-"), "@example.org")
		if u, i, err := st.BounceToken(t.Context(), tok); err != nil || u != f.bob.ID || i != other.ID {
			t.Errorf("second issue's BounceToken = %d, %d, %v", u, i, err)
		}
	})
}

func checkHeader(t *testing.T, m *parsed, key, want string) {
	t.Helper()
	raw := m.get(key)
	if want == "" {
		if m.fields(key) != 0 {
			t.Errorf("%s = %q, want none", key, raw)
		}
		return
	}
	if n := m.fields(key); n != 1 {
		t.Errorf("%s occurs %d times, want once", key, n)
	}
	got, err := new(mime.WordDecoder).DecodeHeader(raw)
	if err != nil {
		t.Errorf("%s = %q: %v", key, raw, err)
	}
	if got != want {
		t.Errorf("%s = %q, want %q", key, got, want)
	}
}

func crlfToLF(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// TestRenderChangeOnly: a mail that filed no message is notified as a
// change, with the incoming mail's Message-ID.
func TestRenderChangeOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		p := NotifyPayload{AuthorID: f.bob.ID, Changes: []string{"status: unread -> resolved"}, MessageID: "<change@example.com>"}
		m := f.render(t, f.row(t, nil, "alice@example.com", p))
		again := f.render(t, f.row(t, nil, "dave@example.net", p))
		pm, pa := parseMail(t, m.Data), parseMail(t, again.Data)
		checkHeader(t, pm, "Message-ID", "<change@example.com>")
		checkHeader(t, pa, "Message-ID", "<change@example.com>")
		checkHeader(t, pm, "In-Reply-To", "<first@example.com>")
		checkHeader(t, pm, "References", "<first@example.com>")
		if want := "Bob Builder changed the issue:\n\nstatus: unread -> resolved\n\n----------\n"; !strings.HasPrefix(crlfToLF(pm.text), want) {
			t.Errorf("body = %q, want it to start %q", pm.text, want)
		}

		// Without a message_id the tracker makes one, the same for every
		// recipient.
		p.MessageID = ""
		m = f.render(t, f.row(t, nil, "alice@example.com", p))
		again = f.render(t, f.row(t, nil, "dave@example.net", p))
		pm, pa = parseMail(t, m.Data), parseMail(t, again.Data)
		id := pm.get("Message-ID")
		if !strings.HasPrefix(id, "<trackerd.c.") || !strings.HasSuffix(id, "@example.org>") || pa.get("Message-ID") != id {
			t.Errorf("made-up Message-IDs %q, %q", id, pa.get("Message-ID"))
		}
	})
}

// TestRenderInjection: user data holding CR/LF cannot add header fields.
func TestRenderInjection(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		f.issue.Title = "Crash\r\nBcc: x@evil.example"
		f.issue.Status = "unread\r\nBcc: y@evil.example"
		if err := st.UpdateIssue(t.Context(), f.issue); err != nil {
			t.Fatal(err)
		}
		f.alice.RealName = "Alice\r\nBcc: z@evil.example\n"
		if err := st.UpdateUser(t.Context(), f.alice); err != nil {
			t.Fatal(err)
		}
		m := &store.Message{IssueID: f.issue.ID, AuthorID: f.alice.ID, MessageID: "<evil@example.com>",
			InReplyTo: "<x>\r\nBcc: w@evil.example", Content: "hello"}
		if err := st.CreateMessage(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		p := NotifyPayload{AuthorID: f.alice.ID, Changes: []string{"title: a\r\nBcc: v@evil.example"}}
		out := f.render(t, f.row(t, m, "bob@example.com", p))
		pm := parseMail(t, out.Data)
		if n := pm.fields("Bcc"); n != 0 {
			t.Errorf("Bcc injected (%d fields):\n%s", n, out.Data)
		}
		if bytes.Contains(out.Data, []byte("\nBcc:")) {
			t.Errorf("a line starts with Bcc:\n%s", out.Data)
		}
		checkHeader(t, pm, "Subject", fmt.Sprintf("[issue%d] Crash Bcc: x@evil.example", f.issue.ID))
		checkHeader(t, pm, "X-Tracker-Status", "unread Bcc: y@evil.example")
		checkHeader(t, pm, "In-Reply-To", "<first@example.com>") // the bad one is dropped
		from, err := pm.h.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != "Alice Bcc: z (Example Tracker)" || from[0].Address != "issues@example.org" {
			t.Errorf("From = %q (%v)", pm.get("From"), err)
		}
	})
}

// TestRenderNonASCII: names and titles outside ASCII are RFC 2047-encoded
// and decode back; long ones are folded.
func TestRenderNonASCII(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		f.cfg.Tracker.Name = "Ticket-Système"
		title := "Überraschung: 日本語の件名 crash (really \"quoted\") " + strings.Repeat("very long title ", 12)
		f.issue.Title = title
		if err := st.UpdateIssue(t.Context(), f.issue); err != nil {
			t.Fatal(err)
		}
		f.alice.RealName = "José \"Pepe\" Müller, Jr."
		if err := st.UpdateUser(t.Context(), f.alice); err != nil {
			t.Fatal(err)
		}
		out := f.render(t, f.row(t, f.first, "bob@example.com", NotifyPayload{AuthorID: f.alice.ID, NewIssue: true}))
		pm := parseMail(t, out.Data)
		checkHeader(t, pm, "Subject", fmt.Sprintf("[issue%d] %s", f.issue.ID, strings.TrimSpace(title)))
		from, err := pm.h.AddressList("From")
		if err != nil || len(from) != 1 {
			t.Fatalf("From = %q: %v", pm.get("From"), err)
		}
		if want := "José \"Pepe\" Müller, Jr. (Ticket-Système)"; from[0].Name != want || from[0].Address != "issues@example.org" {
			t.Errorf("From = %q <%s>, want %q <issues@example.org>", from[0].Name, from[0].Address, want)
		}
		// net/mail, a stricter parser than go-message's, agrees.
		a, err := mail.ParseAddress(pm.get("From"))
		if err != nil || a.Name != "José \"Pepe\" Müller, Jr. (Ticket-Système)" {
			t.Errorf("net/mail.ParseAddress(%q) = %v, %v", pm.get("From"), a, err)
		}
		if !strings.Contains(pm.text, "New submission from José \"Pepe\" Müller, Jr.:") {
			t.Errorf("body = %q", pm.text)
		}
	})
}

// TestRenderQuotedPrintable: the text survives byte for byte and no
// encoded line is longer than 76 characters.
func TestRenderQuotedPrintable(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		content := "A line with trailing spaces   \n" + strings.Repeat("Größenwahn ", 40) + "\n" +
			strings.Repeat("x", 300) + "\n=?utf-8?q?not-a-word?= and = signs\n.\nFrom the start\n\ttabbed"
		m := f.message(t, f.bob, "<qp@example.com>", "", content, time.Now())
		out := f.render(t, f.row(t, m, "alice@example.com", NotifyPayload{AuthorID: f.bob.ID}))
		_, body, _ := bytes.Cut(out.Data, []byte("\r\n\r\n"))
		for i, line := range bytes.Split(body, []byte("\r\n")) {
			if len(line) > 76 {
				t.Errorf("body line %d is %d characters: %q", i+1, len(line), line)
			}
		}
		pm := parseMail(t, out.Data)
		if !strings.Contains(crlfToLF(pm.text), content+"\n") {
			t.Errorf("decoded text lost the content;\ngot:  %q\nwant: %q", pm.text, content)
		}
		if !strings.Contains(string(out.Data), "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n") {
			t.Errorf("not text/plain utf-8 quoted-printable:\n%s", out.Data)
		}
	})
}

// TestRenderAttachments: files fit in nosy.max_attachment_bytes in total
// are attached; the rest are linked.
func TestRenderAttachments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		f.cfg.Nosy.MaxAttachmentBytes = 1000
		m := f.message(t, f.bob, "<files@example.com>", "", "See the files.", time.Now())
		add := func(name, typ string, data []byte) *store.File {
			file := &store.File{MessageID: m.ID, Name: name, Type: typ, Data: data}
			if err := st.CreateFile(t.Context(), file); err != nil {
				t.Fatal(err)
			}
			return file
		}
		small := add("log.txt", "text/plain; charset=utf-8", []byte("line 1\nline 2\n"))
		big := add("core dump.bin", "application/octet-stream", bytes.Repeat([]byte{0, 1, 2, 255}, 300))
		long := strings.Repeat("ä", 70) + ".pdf"
		accented := add(long, "application/pdf", []byte("%PDF-1.4 tiny"))
		fwd := add("forwarded.eml", "message/rfc822", []byte("From: x@example.com\nSubject: fwd\n\nbody\n"))
		second := add("second.bin", "", bytes.Repeat([]byte{7}, 950)) // fits alone, not after the others

		out := f.render(t, f.row(t, m, "alice@example.com", NotifyPayload{AuthorID: f.bob.ID}))
		pm := parseMail(t, out.Data)
		ct, _, _ := mime.ParseMediaType(pm.get("Content-Type"))
		if ct != "multipart/mixed" {
			t.Errorf("Content-Type = %q, want multipart/mixed", pm.get("Content-Type"))
		}
		want := []parsedFile{
			{name: "log.txt", ctype: "text/plain", data: small.Data},
			{name: long, ctype: "application/pdf", data: accented.Data},
			{name: "forwarded.eml", ctype: "message/rfc822", data: []byte("From: x@example.com\r\nSubject: fwd\r\n\r\nbody\r\n")},
		}
		if len(pm.files) != len(want) {
			t.Fatalf("attached %d files, want %d: %+v", len(pm.files), len(want), pm.files)
		}
		for i, w := range want {
			g := pm.files[i]
			if g.name != w.name || g.ctype != w.ctype || !bytes.Equal(g.data, w.data) {
				t.Errorf("file %d = %q %s %q, want %q %s %q", i, g.name, g.ctype, g.data, w.name, w.ctype, w.data)
			}
		}
		text := crlfToLF(pm.text)
		for _, file := range []*store.File{big, second} {
			link := fmt.Sprintf("https://issues.example.org/file/%d/%s", file.ID, strings.ReplaceAll(file.Name, " ", "%20"))
			if !strings.Contains(text, link) {
				t.Errorf("body lacks the link %s:\n%s", link, text)
			}
		}
		if strings.Contains(text, "file/"+strconv.FormatInt(small.ID, 10)+"/") {
			t.Errorf("an attached file is linked too:\n%s", text)
		}
		_ = fwd

		// 0 links everything.
		f.cfg.Nosy.MaxAttachmentBytes = 0
		pm = parseMail(t, f.render(t, f.row(t, m, "alice@example.com", NotifyPayload{AuthorID: f.bob.ID})).Data)
		if len(pm.files) != 0 || strings.Count(pm.text, "https://issues.example.org/file/") != 5 {
			t.Errorf("max_attachment_bytes = 0: %d files attached; body:\n%s", len(pm.files), pm.text)
		}
	})
}

// TestRenderErrors: rows that can never be rendered give permanent errors;
// the worker then gives them up.
func TestRenderErrors(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ok := NotifyPayload{AuthorID: f.alice.ID}
		for name, row := range map[string]*store.Outbox{
			"message gone": func() *store.Outbox { r := f.row(t, f.first, "bob@example.com", ok); r.MsgID = 9999; return r }(),
			"issue gone":   func() *store.Outbox { r := f.row(t, f.first, "bob@example.com", ok); r.IssueID = 9999; return r }(),
			"no issue":     func() *store.Outbox { r := f.row(t, nil, "bob@example.com", ok); r.IssueID = 0; return r }(),
			"author gone":  f.row(t, nil, "bob@example.com", NotifyPayload{AuthorID: 9999}),
			"bad payload":  func() *store.Outbox { r := f.row(t, f.first, "bob@example.com", ok); r.Payload = []byte("{"); return r }(),
			"bad address":  f.row(t, f.first, "bob@example.com\r\nBcc: x@evil.example", ok),
			"no domain":    f.row(t, f.first, "bob", ok),
			"unknown kind": func() *store.Outbox {
				r := f.row(t, f.first, "bob@example.com", ok)
				r.Kind = "carrier-pigeon"
				return r
			}(),
		} {
			_, err := Render(t.Context(), st, f.cfg, row)
			if err == nil || !Permanent(err) {
				t.Errorf("%s: Render error = %v, want a permanent error", name, err)
			}
		}
		if !errors.Is(func() error {
			_, err := Render(t.Context(), st, f.cfg, func() *store.Outbox { r := f.row(t, f.first, "bob@example.com", ok); r.MsgID = 9999; return r }())
			return err
		}(), store.ErrNotFound) {
			t.Errorf("a vanished message's error does not wrap store.ErrNotFound")
		}
	})
}

// TestRenderReply checks the error reply to a refused mail.
func TestRenderReply(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		raw := []byte("From: Zed <zed@example.net>\nTo: issues@example.org\nSubject: [issue999] help\nMessage-ID: <orig@example.net>\n\nPlease help.\n")
		in := &store.Inbound{Source: "smtp", EnvelopeFrom: "zed@example.net", EnvelopeTo: []string{"issues@example.org"}, Raw: raw, Status: store.InboundRejected}
		if err := st.InsertInbound(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		reply := func(p ReplyPayload) *store.Outbox {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			return &store.Outbox{ID: 77, Kind: KindReply, Recipient: "zed@example.net", Payload: b, Created: time.Date(2024, 3, 3, 8, 0, 0, 0, time.UTC)}
		}
		problem := "There is no issue 999. Write [issue] or no designator to open a new issue."
		out := f.render(t, reply(ReplyPayload{InboundID: in.ID, Subject: "[issue999] help", Problem: problem, InReplyTo: "<orig@example.net>"}))
		if out.EnvelopeFrom != "" || out.To != "zed@example.net" {
			t.Errorf("envelope = %q -> %q, want the null sender -> zed@example.net", out.EnvelopeFrom, out.To)
		}
		pm := parseMail(t, out.Data)
		checkHeader(t, pm, "From", `"Example Tracker" <issues@example.org>`)
		checkHeader(t, pm, "To", "<zed@example.net>")
		checkHeader(t, pm, "Subject", "Re: [issue999] help")
		checkHeader(t, pm, "In-Reply-To", "<orig@example.net>")
		checkHeader(t, pm, "References", "<orig@example.net>")
		checkHeader(t, pm, "Auto-Submitted", "auto-replied")
		checkHeader(t, pm, "X-Tracker-Loop", "issues@example.org")
		checkHeader(t, pm, "X-Auto-Response-Suppress", "All")
		checkHeader(t, pm, "Precedence", "")
		if id := pm.get("Message-ID"); !strings.HasPrefix(id, "<trackerd.r.") || !strings.HasSuffix(id, "@example.org>") {
			t.Errorf("Message-ID = %q", id)
		}
		text := crlfToLF(pm.text)
		for _, s := range []string{problem, "[issue42]", "[status=resolved;priority=urgent]", "/status resolved", "/assign", "/close",
			"issues+42@example.org", "issues+42-unsubscribe@example.org", "Statuses: unread, deferred, chatting"} {
			if !strings.Contains(text, s) {
				t.Errorf("reply body lacks %q:\n%s", s, text)
			}
		}
		if len(pm.files) != 1 || pm.files[0].ctype != "message/rfc822" || !bytes.Equal(pm.files[0].data, bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))) {
			t.Errorf("attachments = %+v, want the refused mail as message/rfc822", pm.files)
		}

		// No subject; an 8-bit mail goes back as message/global; a missing
		// inbound row sends the reply without it.
		in8 := &store.Inbound{Source: "smtp", Raw: []byte("Subject: Grüße\n\nÄpfel\n"), Status: store.InboundRejected}
		if err := st.InsertInbound(t.Context(), in8); err != nil {
			t.Fatal(err)
		}
		pm = parseMail(t, f.render(t, reply(ReplyPayload{InboundID: in8.ID, Problem: "x"})).Data)
		checkHeader(t, pm, "Subject", "Your message to Example Tracker could not be filed")
		checkHeader(t, pm, "In-Reply-To", "")
		if len(pm.files) != 1 || pm.files[0].ctype != "message/global" || !bytes.Equal(pm.files[0].data, in8.Raw) {
			t.Errorf("8-bit refused mail attached as %+v", pm.files)
		}
		pm = parseMail(t, f.render(t, reply(ReplyPayload{InboundID: 9999, Subject: "Re: hello", Problem: "x"})).Data)
		checkHeader(t, pm, "Subject", "Re: hello")
		if len(pm.files) != 0 {
			t.Errorf("attachments for a vanished inbound row: %+v", pm.files)
		}

		// A filed mail whose changes were dropped (an unauthenticated
		// sender) is not called unfiled and not returned.
		pm = parseMail(t, f.render(t, reply(ReplyPayload{InboundID: in.ID, Problem: "not authenticated", Filed: true})).Data)
		checkHeader(t, pm, "Subject", "Your message to Example Tracker: changes not applied")
		text = crlfToLF(pm.text)
		for _, bad := range []string{"could not be filed", "Nothing was changed"} {
			if strings.Contains(text, bad) {
				t.Errorf("reply for a filed mail says %q:\n%s", bad, text)
			}
		}
		if !strings.Contains(text, "was filed, but not everything it asked for was done") || !strings.Contains(text, "not authenticated") {
			t.Errorf("reply for a filed mail:\n%s", text)
		}
		if len(pm.files) != 0 {
			t.Errorf("a filed mail was returned: %+v", pm.files)
		}
	})
}
