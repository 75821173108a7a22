package mailgw

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/trackerd/trackerd/mailgw/auth"
	"github.com/trackerd/trackerd/store"
)

// Sender authentication (DESIGN §5 "Who wrote it", issue 8). With
// mailgw.trust = "authenticated", a mail may change properties, run body
// commands, (un)subscribe or add anyone to a nosy list, retitle or reopen
// an issue only when its author's domain is authenticated (package auth).
// Otherwise it is filed as a plain comment (or opens an issue with the
// default properties), nobody joins the nosy list, and the sender is told
// once a day why its changes were not applied.
//
// Where the verdict comes from:
//   - the SMTP/LMTP listener checks SPF, DKIM and DMARC itself and hands
//     its verdict over in Mail.Auth; the archive keeps the mail with that
//     verdict as an Authentication-Results field put first, with
//     trackerd's own authserv-id (mailgw.authserv_id). With trust = "any"
//     nothing is checked and the field says "none". Reprocess reads the
//     verdict back from that first field;
//   - every other source (pollers, deliver, import) is judged by the
//     topmost Authentication-Results fields of the hosts in
//     mailgw.trusted_authserv_ids (auth.Read).
//
// The idempotency of a mail without Message-ID is on the bytes as
// received: the hash is taken before the field is added, and Reprocess
// takes the field off again before hashing.

// authservID is trackerd's own authserv-id: mailgw.authserv_id, or the
// tracker address's domain.
func (g *Gateway) authservID() string {
	if id := g.cfg.MailGW.AuthservID; id != "" {
		return id
	}
	return g.addr.domain
}

// ownVerdictSource reports whether mail of this source was judged by
// trackerd's own listener.
func ownVerdictSource(source string) bool { return source == "smtp" || source == "lmtp" }

// authorAddress is the address the author is looked up by (see
// filing.findAuthor): Resent-From unless keep_real_from, else From, else
// the envelope sender.
func (g *Gateway) authorAddress(m *Mail, sub *Submission) string {
	if sub == nil {
		return m.EnvelopeFrom
	}
	addr := sub.From.Addr
	if sub.ResentFrom != nil && sub.ResentFrom.Addr != "" && !g.cfg.MailGW.KeepRealFrom {
		addr = sub.ResentFrom.Addr
	}
	if addr == "" {
		addr = m.EnvelopeFrom
	}
	return addr
}

// judge sets p.authed (and p.why when not): whether the mail may change
// anything. It is pure (no DNS): parse calls it, and the listener calls
// it again after its own check (Listener.check).
func (g *Gateway) judge(m *Mail, p *parsed) {
	p.authed, p.why = true, ""
	if g.cfg.MailGW.Trust != "authenticated" {
		return
	}
	var v auth.Verdict
	switch {
	case m.Auth != nil:
		v = *m.Auth
	case ownVerdictSource(m.Source):
		// The listener always hands a verdict over; without one nothing
		// vouches for the mail.
	default:
		v = auth.Read(m.Raw, g.cfg.MailGW.TrustedAuthservIDs)
	}
	domain := auth.Domain(g.authorAddress(m, p.sub))
	if !strings.Contains(g.authorAddress(m, p.sub), "@") {
		domain = ""
	}
	if v.Authenticated(domain) {
		return
	}
	p.authed, p.why = false, v.Why(domain)
}

// archived is the raw mail as the archive keeps it: with the listener's
// verdict as a first Authentication-Results field, when there is one.
func (g *Gateway) archived(m *Mail) []byte {
	if m.Auth == nil {
		return m.Raw
	}
	nl := "\r\n" // the mail's own line ending, by its first line
	if i := bytes.IndexByte(m.Raw, '\n'); i == 0 || (i > 0 && m.Raw[i-1] != '\r') {
		nl = "\n"
	}
	f := m.Auth.Field(nl)
	out := make([]byte, 0, len(f)+len(m.Raw))
	return append(append(out, f...), m.Raw...)
}

// unarchive undoes archived for Reprocess: for mail the listener took, the
// first field is trackerd's verdict; it is taken off (so that the mail
// is hashed as received) and handed over as m.Auth.
func (g *Gateway) unarchive(m *Mail) {
	if !ownVerdictSource(m.Source) {
		return
	}
	if v, rest, ok := auth.ReadOwn(m.Raw, g.authservID()); ok {
		m.Raw, m.Auth = rest, &v
	}
}

// checker returns the checker the listener judges mail with, or nil
// when mailgw.trust is "any" (nothing is checked, no DNS is asked).
func (g *Gateway) checker() *auth.Checker {
	if g.cfg.MailGW.Trust != "authenticated" {
		return nil
	}
	return auth.NewChecker(auth.NewResolver(g.cfg.MailGW.DNSServer), g.authservID())
}

// check runs the listener's own check of one mail (DNS: on the session's
// goroutine, before the mail joins a batch) and judges it again.
func (l *Listener) check(ctx context.Context, m *Mail, p *parsed, ip net.IP, helo string) {
	v := auth.Verdict{AuthservID: l.gw.authservID()}
	if l.auth != nil {
		from := ""
		if p.sub != nil {
			from = p.sub.From.Addr
		}
		v = l.auth.Check(ctx, auth.Message{IP: ip, Helo: helo, MailFrom: m.EnvelopeFrom, From: from, Raw: m.Raw})
	}
	m.Auth = &v
	l.gw.judge(m, p)
}

// noticeKind is the sender_notices kind of the reply to an
// unauthenticated mail.
const noticeKind = "unauthenticated"

// untrusted drops what an unauthenticated mail may not do (the subject's
// properties and the body's commands; a subscription is handled by
// refuseSubscription) and tells the sender, at most once a day. It
// returns what is left.
func (f *filing) untrusted(ctx context.Context, props []PropChange, cmds []Command) ([]PropChange, []Command, error) {
	if f.p.authed || (len(props) == 0 && len(cmds) == 0) {
		return props, cmds, nil
	}
	var what []string
	if len(props) > 0 {
		what = append(what, "the properties in the subject")
	}
	if len(cmds) > 0 {
		what = append(what, "the commands at the top of the message")
	}
	return nil, nil, f.notice(ctx, strings.Join(what, " and "), true)
}

// notice records that changes were dropped and queues the reply; filed
// says whether the mail itself is filed (as a comment) all the same.
func (f *filing) notice(ctx context.Context, what string, filed bool) error {
	f.dropped = fmt.Sprintf("not authenticated, %s not applied: %s", what, f.p.why)
	if f.g.opts.Quiet {
		return nil
	}
	to := f.g.authorAddress(f.m, f.p.sub)
	if !strings.Contains(to, "@") {
		return nil
	}
	first, err := f.tx.NoteSender(ctx, to, noticeKind, f.now)
	if err != nil || !first {
		return err
	}
	problem := "Your message was received, but " + what + " were not applied: this tracker (mailgw.trust = \"authenticated\") applies changes only from senders whose domain it can authenticate, and " +
		f.p.why + ".\n\nAsk your mail administrator to publish SPF and DMARC records and to sign your mail with DKIM, or send from an address that is authenticated. " +
		"You get this notice at most once a day."
	ok, err := f.g.queueReply(ctx, f.tx, f.m, f.p, f.inboundID, problem, filed)
	f.queued = f.queued || ok
	return err
}

// refuseSubscription: an unauthenticated mail to +N-subscribe or
// +N-unsubscribe changes nothing; the sender is told.
func (f *filing) refuseSubscription(ctx context.Context, sa subaddress) (Result, bool, error) {
	if f.p.authed {
		return Result{}, false, nil
	}
	if err := f.notice(ctx, "the "+sa.action+" request and its changes", false); err != nil {
		return Result{}, true, err
	}
	if err := f.tx.UpdateFiled(ctx, f.p.messageID, f.author.ID, sa.issueID, 0); err != nil {
		return Result{}, true, err
	}
	return Result{Status: store.InboundIgnored, Reason: f.dropped, IssueID: sa.issueID}, true, nil
}
