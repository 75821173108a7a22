package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/store"
)

// Outbox kinds this package renders (store.Outbox.Kind).
const (
	// KindNotify is a notification of a message, or of a change made by a
	// mail that filed no message, to one nosy member. Payload: NotifyPayload.
	KindNotify = "notify"
	// KindReply is an error reply to the sender of a mail that could not
	// be filed. Payload: ReplyPayload.
	KindReply = "reply"
)

// NotifyPayload is the Payload of a KindNotify outbox row, written by the
// gateway as JSON. The row's IssueID names the issue (required), MsgID the
// stored message (0 for a change-only notification) and Recipient the
// address to notify.
type NotifyPayload struct {
	// AuthorID is the user who wrote the mail or made the change; 0 means
	// the tracker itself. For a row with MsgID, the message's own author
	// is used instead.
	AuthorID int64 `json:"author_id"`
	// NewIssue is true when the mail opened the issue.
	NewIssue bool `json:"new_issue"`
	// Changes are the property changes as they are shown, one per line:
	// "status: unread -> chatting", "keyword: +a -b"; for a new issue, the
	// values it was created with ("priority: bug").
	Changes []string `json:"changes"`
	// MessageID is the Message-ID of a change-only notification (the
	// incoming mail's own, so every recipient's copy is the same mail).
	// Ignored when the row has a MsgID: the stored message's is used.
	MessageID string `json:"message_id"`
}

// ReplyPayload is the Payload of a KindReply outbox row. The row's
// Recipient is the sender to answer; IssueID may be 0.
type ReplyPayload struct {
	// InboundID is the refused mail in the raw archive; it is attached.
	// 0, or a row that is gone, sends the reply without it.
	InboundID int64 `json:"inbound_id"`
	// Subject is the refused mail's subject, decoded.
	Subject string `json:"subject"`
	// Problem says what was wrong and how to fix it, in plain text.
	Problem string `json:"problem"`
	// InReplyTo is the refused mail's Message-ID.
	InReplyTo string `json:"in_reply_to"`
	// Filed is true when the mail was filed all the same and only some of
	// what it asked for was not done (the changes of an unauthenticated
	// sender): the reply says so and does not return the mail.
	Filed bool `json:"filed,omitempty"`
}

// Reader is what Render needs from the store. Both *store.Store and
// *store.Tx satisfy it. Besides reading, Render creates the recipient's
// unsubscribe and bounce token rows on first use (idempotently; see
// "Tokens" in the package documentation), so a Reader must be writable.
type Reader interface {
	Issue(ctx context.Context, id int64) (*store.Issue, error)
	Message(ctx context.Context, id int64) (*store.Message, error)
	FirstMessage(ctx context.Context, issueID int64) (*store.Message, error)
	Files(ctx context.Context, messageID int64) ([]store.File, error)
	File(ctx context.Context, id int64) (*store.File, error)
	UserByID(ctx context.Context, id int64) (*store.User, error)
	UserByAddress(ctx context.Context, addr string) (*store.User, error)
	Inbound(ctx context.Context, id int64) (*store.Inbound, error)
	Token(ctx context.Context, token string) (userID, issueID int64, err error)
	CreateToken(ctx context.Context, token string, userID, issueID int64) error
	BounceToken(ctx context.Context, token string) (userID, issueID int64, err error)
	CreateBounceToken(ctx context.Context, token string, userID, issueID int64) error
}

var (
	_ Reader = (*store.Store)(nil)
	_ Reader = (*store.Tx)(nil)
)

// Render turns one outbox row into the mail to send (DESIGN §6). It reads
// the issue, message, users and files through r, and may create the
// recipient's token rows; it sends nothing. Rendering the same row again
// gives the same mail (same headers and text; only the MIME boundary
// differs).
//
// An error for which Permanent is true means the row can never be rendered
// (unknown kind, bad payload, unusable recipient, the issue or message is
// gone) and should be given up; any other error (the database, the token
// key file) is worth retrying.
//
// Render reads DATA_DIR/TokenKeyFile (creating it if missing) when the
// recipient is a known user; the Worker reads it once instead.
func Render(ctx context.Context, r Reader, cfg *config.Config, row *store.Outbox) (*Mail, error) {
	rd := &renderer{r: r, cfg: cfg, key: func() ([]byte, error) { return loadTokenKey(cfg.Tracker.DataDir) }}
	return rd.render(ctx, row)
}

// renderer holds what rendering one row needs.
type renderer struct {
	r   Reader
	cfg *config.Config
	// key returns the token key; called only when a token is needed.
	key func() ([]byte, error)
	t   *tracker // from cfg, made on first use
}

func (rd *renderer) render(ctx context.Context, row *store.Outbox) (*Mail, error) {
	if rd.t == nil {
		t, err := newTracker(rd.cfg)
		if err != nil {
			return nil, fmt.Errorf("notify: render outbox %d: %w", row.ID, err)
		}
		rd.t = &t
	}
	t := *rd.t
	var err error
	var m *Mail
	switch row.Kind {
	case KindNotify:
		m, err = rd.notification(ctx, t, row)
	case KindReply:
		m, err = rd.reply(ctx, t, row)
	default:
		err = permanentf("unknown kind %q", row.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("notify: render outbox %d: %w", row.ID, err)
	}
	return m, nil
}

// tracker is the tracker's identity, from [tracker].
type tracker struct {
	name          string // display name
	addr          string // bare address
	local, domain string
	sep           string // sub-address separator
	web           string // web URL ending in "/", "" if unusable in mail
	list          string // listID()
}

func newTracker(cfg *config.Config) (tracker, error) {
	addr, err := addrSpec(cfg.Tracker.Address)
	if err != nil {
		return tracker{}, fmt.Errorf("tracker.address: %w", err)
	}
	at := strings.LastIndexByte(addr, '@')
	t := tracker{name: clean(cfg.Tracker.Name), addr: addr, local: addr[:at], domain: addr[at+1:], sep: cfg.Tracker.SubaddressSeparator}
	if t.name == "" {
		t.name = "trackerd"
	}
	if t.sep == "" {
		t.sep = "+"
	}
	if web := strings.TrimSpace(cfg.Tracker.WebURL); web != "" && isASCIIText(web) && !strings.ContainsAny(web, " <>\"") {
		t.web = strings.TrimRight(web, "/") + "/"
	}
	t.list = t.listID()
	return t, nil
}

// sub returns the sub-address local+detail@domain.
func (t tracker) sub(detail string) string {
	return t.local + t.sep + detail + "@" + t.domain
}

// listID returns the List-Id value (RFC 2919): the tracker's name as the
// phrase and <local.domain> as the id, e.g. "Example" <issues.example.org>
// for issues@example.org. One id for the whole tracker (filters match the
// tracker; X-Tracker-Issue tells issues apart); stable as long as the
// address is. Characters of the local part that a dot-atom does not allow
// become '-'.
func (t tracker) listID() string {
	var b strings.Builder
	for i := 0; i < len(t.local); i++ {
		c := t.local[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('-')
		}
	}
	return phrase(t.name) + " <" + strings.ToLower(b.String()+"."+t.domain) + ">"
}

// stableID returns a Message-ID made up by the tracker, the same whenever
// it is made from the same parts.
func (t tracker) stableID(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "<trackerd." + kind + "." + hex.EncodeToString(h.Sum(nil)[:10]) + "@" + t.domain + ">"
}

// gone turns ErrNotFound into a permanent error: the row's issue, message
// or user vanished, and will not come back.
func gone(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return permanentf("%s is gone: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// displayName is how a user is named in mail: the real name, else the
// username. Any word of it that holds an address (usernames default to
// one) is cut to what comes before the '@': a notification never shows
// the author's address.
func displayName(u *store.User) string {
	n := clean(u.RealName)
	if n == "" {
		n = clean(u.Username)
	}
	if strings.IndexByte(n, '@') >= 0 {
		words := strings.Fields(n)
		for i, w := range words {
			words[i], _, _ = strings.Cut(w, "@")
		}
		n = strings.Join(strings.Fields(strings.Join(words, " ")), " ")
	}
	if n == "" {
		n = "user " + strconv.FormatInt(u.ID, 10)
	}
	return n
}

// notification renders a KindNotify row.
func (rd *renderer) notification(ctx context.Context, t tracker, row *store.Outbox) (*Mail, error) {
	var p NotifyPayload
	if len(bytes.TrimSpace(row.Payload)) > 0 {
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return nil, permanentf("payload: %w", err)
		}
	}
	to, err := addrSpec(row.Recipient)
	if err != nil {
		return nil, permanentf("recipient: %w", err)
	}
	if row.IssueID == 0 {
		return nil, permanentf("a notification needs an issue")
	}
	is, err := rd.r.Issue(ctx, row.IssueID)
	if err != nil {
		return nil, gone(err, "issue "+strconv.FormatInt(row.IssueID, 10))
	}
	var m *store.Message
	if row.MsgID != 0 {
		if m, err = rd.r.Message(ctx, row.MsgID); err != nil {
			return nil, gone(err, "message "+strconv.FormatInt(row.MsgID, 10))
		}
	}
	first, err := rd.r.FirstMessage(ctx, is.ID)
	if errors.Is(err, store.ErrNotFound) {
		first, err = nil, nil
	}
	if err != nil {
		return nil, err
	}

	authorID := p.AuthorID
	if m != nil {
		authorID = m.AuthorID
	}
	author := "" // "" = the tracker itself
	if authorID != 0 {
		u, err := rd.r.UserByID(ctx, authorID)
		if err != nil {
			return nil, gone(err, "author "+strconv.FormatInt(authorID, 10))
		}
		author = displayName(u)
	}
	recipient, err := rd.r.UserByAddress(ctx, to)
	if errors.Is(err, store.ErrNotFound) {
		recipient, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if recipient != nil && recipient.Bouncing {
		// Marked after the row was queued (DESIGN §6: bouncing addresses
		// get no mail). Once cleared (mail from the address, or user set
		// -clear-bouncing), `outbox retry` sends it.
		return nil, permanentf("%s is bouncing (user show %s)", to, to)
	}
	var unsubTok, bounceTok string
	if recipient != nil {
		key, err := rd.key()
		if err != nil {
			return nil, err
		}
		if unsubTok, err = ensureToken(ctx, rd.r, key, kindUnsubscribe, recipient.ID, is.ID); err != nil {
			return nil, err
		}
		if bounceTok, err = ensureToken(ctx, rd.r, key, kindBounce, recipient.ID, is.ID); err != nil {
			return nil, err
		}
	}

	// Threading (DESIGN §6): the message's own id; the parent is what it
	// answered, else the issue's first message; References names the
	// first message and the parent.
	var id, parent, firstID string
	if first != nil && (m == nil || first.ID != m.ID) {
		firstID = msgID(first.MessageID)
	}
	issueStr := strconv.FormatInt(is.ID, 10)
	when := row.Created
	if m != nil {
		id = msgID(m.MessageID)
		if id == "" {
			id = t.stableID("m", strconv.FormatInt(m.ID, 10), m.MessageID)
		}
		parent = msgID(m.InReplyTo)
		when = m.Date
	} else {
		id = msgID(p.MessageID)
		if id == "" {
			id = t.stableID("c", issueStr, strconv.FormatInt(p.AuthorID, 10), strings.Join(p.Changes, "\n"))
		}
	}
	if parent == "" {
		parent = firstID
	}
	if parent == id {
		parent = ""
	}
	var refs []string
	for _, r := range []string{firstID, parent} {
		if r != "" && r != id && (len(refs) == 0 || refs[0] != r) {
			refs = append(refs, r)
		}
	}
	if when.IsZero() {
		when = time.Now()
	}

	from := t.name
	if author != "" {
		from = author + " (" + t.name + ")"
	}
	toName := ""
	if recipient != nil {
		toName = recipient.RealName
	}

	var h header
	h.add("Date", date(when))
	h.add("From", phrase(from)+" <"+t.addr+">")
	h.add("Reply-To", "<"+t.sub(issueStr)+">")
	h.add("To", mailbox(toName, to))
	h.add("Subject", strings.TrimSpace("[issue"+issueStr+"] "+unstructured(is.Title)))
	h.add("Message-ID", id)
	if parent != "" {
		h.add("In-Reply-To", parent)
	}
	if len(refs) > 0 {
		h.add("References", strings.Join(refs, " "))
	}
	h.add("List-Id", t.list)
	unsub := "<mailto:" + t.sub(issueStr+"-unsubscribe") + ">"
	if unsubTok != "" && t.web != "" {
		unsub += ", <" + t.web + "unsubscribe/" + unsubTok + ">"
	}
	h.add("List-Unsubscribe", unsub)
	if unsubTok != "" && t.web != "" {
		h.add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h.add("Precedence", "bulk")
	h.add("Auto-Submitted", "auto-generated")
	h.add("X-Auto-Response-Suppress", "All")
	h.add("X-Tracker-Loop", t.addr)
	h.add("X-Tracker-Issue", issueStr)
	h.add("X-Tracker-Status", unstructured(is.Status))
	h.add("X-Tracker-Priority", unstructured(is.Priority))

	// The body.
	var files []store.File
	if m != nil {
		if files, err = rd.r.Files(ctx, m.ID); err != nil {
			return nil, err
		}
	}
	attached, linked, err := rd.splitFiles(ctx, files)
	if err != nil {
		return nil, err
	}
	name := author
	if name == "" {
		name = t.name
	}
	var body strings.Builder
	switch {
	case p.NewIssue || (m != nil && first != nil && first.ID == m.ID):
		body.WriteString("New submission from " + name + ":\n\n")
	case m != nil:
		body.WriteString(name + " added the comment:\n\n")
	default:
		body.WriteString(name + " changed the issue:\n\n")
	}
	if m != nil {
		if c := strings.TrimRight(strings.TrimLeft(m.Content, "\r\n"), " \t\r\n"); c != "" {
			body.WriteString(c + "\n\n")
		}
	}
	for _, f := range linked {
		body.WriteString("File " + clean(f.Name) + " (" + size(f.Size) + ") is too large to attach: " + rd.fileURL(t, f) + "\n")
	}
	if len(linked) > 0 {
		body.WriteString("\n")
	}
	n := 0
	for _, c := range p.Changes {
		if c = clean(c); c != "" {
			body.WriteString(c + "\n")
			n++
		}
	}
	if n > 0 {
		body.WriteString("\n")
	}
	body.WriteString("----------\n" + t.name)
	if t.web != "" {
		body.WriteString(" <" + t.web + ">\n<" + t.web + "issue/" + issueStr + ">")
	}
	body.WriteString("\n")

	parts := []part{textPart(body.String())}
	for _, f := range attached {
		parts = append(parts, attachmentPart(f.Name, f.Type, f.Data))
	}
	var b bytes.Buffer
	writeMessage(&b, &h, parts)

	env := t.addr
	if bounceTok != "" {
		env = t.sub("bounce-" + bounceTok)
	}
	return &Mail{EnvelopeFrom: env, To: to, Data: b.Bytes()}, nil
}

// splitFiles decides which files are attached: in order, each that still
// fits in nosy.max_attachment_bytes (a total for the mail); the others are
// linked. A file that vanished meanwhile is left out.
func (rd *renderer) splitFiles(ctx context.Context, files []store.File) (attached []*store.File, linked []store.File, err error) {
	left := rd.cfg.Nosy.MaxAttachmentBytes
	for _, f := range files {
		if f.Size > left {
			linked = append(linked, f)
			continue
		}
		full, err := rd.r.File(ctx, f.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		left -= full.Size
		attached = append(attached, full)
	}
	return attached, linked, nil
}

// fileURL is the web view's download link for f: WEB_URL/file/ID/NAME.
func (rd *renderer) fileURL(t tracker, f store.File) string {
	name := f.Name
	if name == "" {
		name = "file"
	}
	u := "file/" + strconv.FormatInt(f.ID, 10) + "/" + url.PathEscape(name)
	if t.web == "" {
		return u
	}
	return t.web + u
}

// size formats a byte count for people: "512 bytes", "1.5 KiB", "2.0 MiB".
func size(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1024*1024:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
	case n < 1024*1024*1024:
		return strconv.FormatFloat(float64(n)/(1024*1024), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(1024*1024*1024), 'f', 1, 64) + " GiB"
}
