package mailgw

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/trackerd/trackerd/store"
)

// Bounces (DESIGN §2.5, §6): every notification leaves with the envelope
// sender local+bounce-TOKEN@domain, TOKEN naming its recipient (and
// issue) in the store's tokens table. Mail that comes back to such an
// address is a bounce of that notification, whatever it looks like: it
// is never filed, and it is counted against the recipient.
//
//   - A DSN or a recognised non-standard bounce (Class Bounce) counts as
//     hard when its report says so (5.x.x, or failed without a status:
//     BounceInfo.Hard) and as soft otherwise (delays, 4.x.x).
//   - Any other mail to the address counts as a soft bounce: a bounce
//     the classifier did not recognise is still a bounce.
//   - Except automatic replies, read receipts and feedback reports, which
//     some systems send to the envelope sender: they are not failures
//     and count nothing.
//
// Hard bounces in a row (outgoing.bounce_limit, with no mail from the
// address in between: filing one clears the count, see clearBouncing)
// mark the user bouncing, and nosy.Recipients leaves bouncing users out.
// A bounce is counted once per (user, bounce Message-ID), so the same DSN
// delivered twice counts once. Only the VERP token is trusted: a DSN to
// the tracker's plain address names addresses anyone could write, so it
// counts nothing.

// bounceToken returns the TOKEN of the first bounce address the mail was
// sent to (the envelope, or without one To, Cc and Delivered-To), or "".
func (g *Gateway) bounceToken(m *Mail, p *parsed) string {
	cands := m.Recipients
	if len(cands) == 0 && p.sub != nil {
		for _, l := range [][]Address{p.sub.To, p.sub.Cc} {
			for _, a := range l {
				cands = append(cands, a.Addr)
			}
		}
		cands = append(cands, p.sub.DeliveredTo...)
	}
	for _, c := range cands {
		if r, ok := g.addr.parse(c); ok && r.action == actionBounce {
			return r.token
		}
	}
	return ""
}

// countBounce counts a mail sent to the bounce address with token tok
// against the recipient it names, inside tx, and returns the reason the
// archive keeps (the mail is archived as ignored). An error is the
// store's.
func (g *Gateway) countBounce(ctx context.Context, tx *store.Tx, p *parsed, inboundID int64, tok string) (string, error) {
	if g.opts.Quiet {
		return "bounce: sent to a bounce address; not counted (import -quiet)", nil
	}
	userID, issueID, err := tx.BounceToken(ctx, tok)
	if errors.Is(err, store.ErrNotFound) {
		return "bounce: sent to an unknown bounce address; not counted", nil
	}
	if err != nil {
		return "", fmt.Errorf("bounce token: %w", err)
	}
	u, err := tx.UserByID(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("bounce: %w", err)
	}
	hard, status, what := false, "", "mail"
	if p.sub != nil {
		switch p.sub.Class {
		case AutoReply, ReadReceipt, FeedbackReport:
			return fmt.Sprintf("%s to the bounce address of %s (user %d); not counted as a bounce", p.sub.Class, u.Address, u.ID), nil
		case Bounce:
			what = "bounce"
			if p.sub.Bounce != nil {
				hard, status = p.sub.Bounce.Hard, p.sub.Bounce.Status
			}
		}
	}
	b := &store.Bounce{UserID: userID, IssueID: issueID, InboundID: inboundID, MessageID: p.messageID, Hard: hard, Status: status}
	r, err := tx.RecordBounce(ctx, b, g.cfg.Outgoing.BounceLimit)
	if err != nil {
		return "", err
	}
	kind := "soft"
	if hard {
		kind = "hard"
	}
	if status != "" {
		kind += " " + status
	}
	if !r.Counted {
		return fmt.Sprintf("bounce: %s (%s) for %s (user %d) was counted before", what, kind, u.Address, u.ID), nil
	}
	reason := fmt.Sprintf("bounce: counted a %s bounce for %s (user %d, issue %d): %d hard bounces in a row",
		kind, u.Address, u.ID, issueID, r.HardBounces)
	if what == "mail" {
		reason = fmt.Sprintf("bounce: mail to the bounce address counted as a %s bounce for %s (user %d, issue %d): %d hard bounces in a row",
			kind, u.Address, u.ID, issueID, r.HardBounces)
	}
	switch {
	case r.Marked:
		reason += "; now marked bouncing: no more notifications until mail from the address comes in"
	case r.Bouncing:
		reason += "; marked bouncing"
	}
	g.log.Info("bounce counted", "user_id", u.ID, "issue_id", issueID, "inbound_id", inboundID, "hard", hard,
		"status", status, "hard_bounces", r.HardBounces, "bouncing", r.Bouncing)
	return reason, nil
}

// clearBouncing resets the author's bounce count and bouncing flag when
// their mail is filed from their primary address, the one notifications
// go to (DESIGN §6: a later successful mail from that address clears
// it). It runs in the mail's savepoint, so a mail refused later clears
// nothing.
func (f *filing) clearBouncing(ctx context.Context) error {
	u := f.author
	if !u.Bouncing && u.BounceCount == 0 {
		return nil
	}
	// The address the author was found by (as findAuthor picks it).
	sub := f.p.sub
	from := sub.From.Addr
	if sub.ResentFrom != nil && sub.ResentFrom.Addr != "" && !f.g.cfg.MailGW.KeepRealFrom {
		from = sub.ResentFrom.Addr
	}
	if from == "" {
		from = f.m.EnvelopeFrom
	}
	if !strings.EqualFold(strings.TrimSpace(from), u.Address) {
		return nil
	}
	if _, err := f.tx.ClearBouncing(ctx, u.ID); err != nil {
		return err
	}
	f.g.log.Info("bouncing cleared", "user_id", u.ID, "was_bouncing", u.Bouncing, "hard_bounces", u.BounceCount)
	u.Bouncing, u.BounceCount = false, 0
	return nil
}
