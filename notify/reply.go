package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/store"
)

// MaxReturnedBytes bounds the refused mail attached whole to an error
// reply; a larger one is returned as its header section only
// (text/rfc822-headers, RFC 6522 §4), so the reply itself is not refused
// for its size.
const MaxReturnedBytes = 5 << 20

// reply renders a KindReply row: an RFC 3834 auto-reply to the sender of a
// mail that could not be filed, with the null envelope sender.
func (rd *renderer) reply(ctx context.Context, t tracker, row *store.Outbox) (*Mail, error) {
	var p ReplyPayload
	if len(bytes.TrimSpace(row.Payload)) > 0 {
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return nil, permanentf("payload: %w", err)
		}
	}
	to, err := addrSpec(row.Recipient)
	if err != nil {
		return nil, permanentf("recipient: %w", err)
	}
	var raw []byte
	if p.InboundID != 0 {
		in, err := rd.r.Inbound(ctx, p.InboundID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			raw = in.Raw
		}
	}

	subject := clean(p.Subject)
	var subj string
	switch {
	case subject == "" && p.Filed:
		subj = unstructured("Your message to " + t.name + ": changes not applied")
	case subject == "":
		subj = unstructured("Your message to " + t.name + " could not be filed")
	case hasReplyPrefix(subject):
		subj = unstructured(subject)
	default:
		subj = "Re: " + unstructured(subject)
	}
	when := row.Created
	var h header
	h.add("Date", date(when))
	h.add("From", mailbox(t.name, t.addr))
	h.add("To", "<"+to+">")
	h.add("Subject", subj)
	h.add("Message-ID", t.stableID("r", strconv.FormatInt(row.ID, 10), t.addr, row.Created.String(), to))
	if orig := msgID(p.InReplyTo); orig != "" {
		h.add("In-Reply-To", orig)
		h.add("References", orig)
	}
	h.add("Auto-Submitted", "auto-replied")
	h.add("X-Auto-Response-Suppress", "All")
	h.add("X-Tracker-Loop", t.addr)
	if row.IssueID != 0 {
		h.add("X-Tracker-Issue", strconv.FormatInt(row.IssueID, 10))
	}

	if p.Filed {
		raw = nil // it is on the issue: nothing to return
	}
	var body strings.Builder
	if p.Filed {
		body.WriteString("Your message to " + t.name + " was filed, but not everything it asked for was done.\n\n")
	} else {
		body.WriteString("Your message to " + t.name + " could not be filed.\n\n")
	}
	if subject != "" {
		body.WriteString("    Subject: " + subject + "\n\n")
	}
	problem := strings.TrimSpace(strings.ToValidUTF8(p.Problem, "\uFFFD"))
	if problem == "" {
		problem = "The tracker could not tell what to do with it."
	}
	body.WriteString("What went wrong:\n\n" + problem + "\n\n")
	switch {
	case p.Filed:
		body.WriteString("Your text is on the issue; only the changes were left out.\n\n")
	case raw == nil:
		body.WriteString("Nothing was changed. Correct the problem and send your message again.\n\n")
	case len(raw) > MaxReturnedBytes:
		body.WriteString("Nothing was changed. Correct the problem and send your message again. Your\n" +
			"message is too large to return whole; its header is attached.\n\n")
	default:
		body.WriteString("Nothing was changed. Correct the problem and send your message again; it is\n" +
			"attached to this mail.\n\n")
	}
	body.WriteString(helpText(rd.cfg, t))
	body.WriteString("\n----------\n" + t.name)
	if t.web != "" {
		body.WriteString(" <" + t.web + ">")
	}
	body.WriteString("\n")

	parts := []part{textPart(body.String())}
	switch {
	case raw == nil:
	case len(raw) > MaxReturnedBytes:
		parts = append(parts, headerPart(raw))
	default:
		parts = append(parts, attachmentPart("original.eml", "message/rfc822", raw))
	}
	var b bytes.Buffer
	writeMessage(&b, &h, parts)
	// The null sender: an auto-reply must not draw bounces or replies
	// (RFC 3834 §3.3, RFC 5321 §4.5.5).
	return &Mail{EnvelopeFrom: "", To: to, Data: b.Bytes()}, nil
}

// hasReplyPrefix reports whether subject already starts with "Re:" (any
// case), so the reply does not say "Re: Re:".
func hasReplyPrefix(subject string) bool {
	return len(subject) >= 3 && strings.EqualFold(subject[:3], "re:")
}

// headerPart returns the header section of raw (up to the first empty
// line) as a text/rfc822-headers attachment, in base64 since it may hold
// 8-bit bytes.
func headerPart(raw []byte) part {
	end := len(raw)
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(raw, []byte(sep)); i >= 0 && i+len(sep) < end {
			end = i + len(sep)
		}
	}
	if end > MaxReturnedBytes {
		end = MaxReturnedBytes
	}
	return attachmentPart("original-header.txt", "text/rfc822-headers", raw[:end])
}

// helpText is the short guide to the mail interface sent with every error
// reply (DESIGN §5), following the configuration: the subject suffix only
// when it is parsed, body commands only when they are enabled.
func helpText(cfg *config.Config, t tracker) string {
	var b strings.Builder
	title := "How to write to " + t.name
	b.WriteString(title + "\n" + strings.Repeat("-", len([]rune(title))) + "\n\n")
	fmt.Fprintf(&b, "To open an issue, write to %s;\nthe subject becomes its title.\n\n", t.addr)
	fmt.Fprintf(&b, "To comment on issue 42, reply to one of its notifications, write to\n%s, or put [issue42] anywhere in the subject:\n\n", t.sub("42"))
	b.WriteString("    Subject: Re: [issue42] Crash when saving\n\n")
	if cfg.MailGW.SubjectSuffixParsing != "none" {
		b.WriteString("To change the issue from the subject, end the subject with\n" +
			"[property=value;property=value]:\n\n" +
			"    Subject: [issue42] Crash when saving [status=resolved;priority=urgent]\n\n" +
			"The properties are status, priority, assignedto (an address), title and\n" +
			"superseder (an issue number), and keyword and nosy, which take +value\n" +
			"to add, -value to remove, or a comma-separated list to replace:\n\n" +
			"    [keyword=+crash;nosy=-bob@example.org]\n\n")
	}
	for _, l := range []struct {
		name   string
		values []string
	}{{"Statuses", cfg.Schema.Statuses}, {"Priorities", cfg.Schema.Priorities}, {"Keywords", cfg.Schema.Keywords}} {
		if len(l.values) > 0 {
			b.WriteString(wrap(l.name+": "+strings.Join(l.values, ", ")+".", 72))
		}
	}
	b.WriteString("\n")
	if cfg.MailGW.BodyCommands {
		b.WriteString("Or put commands on the first lines of the body, before any other text,\n" +
			"one per line:\n\n" +
			"    /status resolved\n" +
			"    /priority urgent\n" +
			"    /assign alice@example.org    (or /assign me)\n" +
			"    /unassign\n" +
			"    /keyword +crash -ui\n" +
			"    /nosy +carol@example.org -bob@example.org\n" +
			"    /title A better title\n" +
			"    /close\n" +
			"    /reopen\n" +
			"    /subscribe\n" +
			"    /unsubscribe\n\n")
	}
	fmt.Fprintf(&b, "To follow issue 42 without writing, send any mail to\n%s;\nto stop, to %s.\n",
		t.sub("42-subscribe"), t.sub("42-unsubscribe"))
	return b.String()
}

// wrap breaks s at spaces into lines of at most width bytes where the
// words allow, continuing lines with two spaces of indent; the result ends
// in a newline.
func wrap(s string, width int) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && line+1+len(w) > width {
			b.WriteString("\n  ")
			line = 2
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\n")
	return b.String()
}
