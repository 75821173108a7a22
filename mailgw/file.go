package mailgw

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trackerd/trackerd/mailgw/reply"
	"github.com/trackerd/trackerd/nosy"
	"github.com/trackerd/trackerd/notify"
	"github.com/trackerd/trackerd/store"
)

// filing is one mail being filed inside its savepoint.
type filing struct {
	g         *Gateway
	tx        *store.Tx
	m         *Mail
	p         *parsed
	inboundID int64
	now       time.Time

	author   *store.User
	issue    *store.Issue
	isNew    bool
	old      store.Issue // the issue before this mail
	changes  []change
	nosyAdd  map[int64]*store.User
	nosyDrop map[int64]*store.User
	assignee *store.User // newly set assignee, joins the nosy list
	// statusSet is true when the mail sets the status itself (even to
	// its current value), which turns off the reopen rule.
	statusSet bool
	queued    bool // outbox rows were written
	// dropped says which changes of an unauthenticated mail were not
	// applied, and why (trust.go).
	dropped string

	recipUsers []*store.User         // the users recipients found, for newNosy
	newNosy    map[int64]*store.User // a new issue's nosy list as updateNosy made it; nil: read it
}

// change is one property change, for the journal and the notification.
type change struct {
	prop, old, new string
	note           string // "status: unread -> chatting"
}

// file files the mail. A *rejection is the sender's fault and leaves
// nothing behind (the savepoint is rolled back); any other error is ours.
func (f *filing) file(ctx context.Context) (Result, error) {
	cfg := &f.g.cfg.MailGW
	sub := f.p.sub
	author, err := f.findAuthor(ctx)
	if errors.Is(err, store.ErrDuplicate) {
		issueID, msgID, err := f.tx.Filed(ctx, f.p.messageID, author.ID)
		if err != nil {
			return Result{}, err
		}
		return Result{Status: store.InboundIgnored, Reason: "duplicate: this mail was filed before",
			IssueID: issueID, MsgID: msgID, Duplicate: true}, nil
	} else if err != nil {
		return Result{}, err
	}
	f.author = author

	subj, serr := ParseSubject(sub.Subject, cfg.SubjectPrefixParsing, cfg.SubjectSuffixParsing)
	if serr != nil {
		return Result{}, rejectf("the subject %q could not be read: %v", sub.Subject, serr)
	}
	title := subj.Title

	// Find the issue, first match wins (DESIGN §5).
	route, err := f.route(ctx, &subj, &title)
	if err != nil {
		return Result{}, err
	}
	if err := f.checkLimits(ctx); err != nil { // limits.go
		return Result{}, err
	}
	if route.action == actionSubscribe || route.action == actionUnsubscribe {
		if res, refused, err := f.refuseSubscription(ctx, route); refused { // trust.go
			return res, err
		}
		return f.subscription(ctx, route)
	}

	// The text: commands at the top, then quotes and signature (worked
	// out by parse, before the transaction: see prepareText).
	full := sub.Text
	bt := f.p.text
	if bt == nil {
		bt = f.g.prepareText(sub)
	}
	if bt.cmdErr != nil {
		return Result{}, rejectf("a command at the top of the message is wrong: %v", bt.cmdErr)
	}
	cmds := bt.cmds
	content := f.content(bt)

	// Property changes: the subject suffix, then the commands.
	// In loose mode a suffix that fails the checks is title text; in
	// strict mode applyProp refuses it below.
	props := subj.Props
	if len(props) > 0 && cfg.SubjectSuffixParsing == SubjectLoose && f.checkProps(props) != nil {
		props, title = nil, subj.TitleWithSuffix
	}
	if props, cmds, err = f.untrusted(ctx, props, cmds); err != nil { // trust.go
		return Result{}, err
	}

	if f.issue == nil {
		if strings.TrimSpace(title) == "" {
			return Result{}, rejectf("a new issue needs a subject: write a short title in the Subject line")
		}
		f.isNew = true
		f.issue = &store.Issue{Title: title, Status: f.g.cfg.Schema.DefaultStatus, Priority: f.g.cfg.Schema.DefaultPriority,
			Created: f.now, Activity: f.now, CreatorID: author.ID, ActorID: author.ID}
	} else {
		f.old = *f.issue
		f.old.Keywords = append([]string(nil), f.issue.Keywords...)
		if cfg.SubjectUpdatesTitle && f.p.authed && title != "" && title != f.issue.Title {
			f.set("title", f.issue.Title, title)
			f.issue.Title = title
		}
	}
	for _, pc := range props {
		if err := f.applyProp(ctx, pc); err != nil {
			return Result{}, err
		}
	}
	for _, c := range cmds {
		if err := f.applyCommand(ctx, c); err != nil {
			return Result{}, err
		}
	}

	hasMessage := content != "" || len(sub.Files) > 0
	schema := &f.g.cfg.Schema
	if !f.isNew && hasMessage && !f.statusSet && f.p.authed &&
		(f.issue.Status == schema.DefaultStatus || contains(schema.ClosedStatuses, f.issue.Status)) &&
		f.issue.Status != schema.ReopenStatus {
		// Roundup's status rule: a message reopens an unread or closed issue.
		f.set("status", f.issue.Status, schema.ReopenStatus)
		f.issue.Status = schema.ReopenStatus
	}
	if !hasMessage && len(f.changes) == 0 && len(f.nosyAdd) == 0 && len(f.nosyDrop) == 0 {
		if !f.isNew {
			return Result{Status: store.InboundIgnored, Reason: "no new text, attachment or change (only quoted text?)", IssueID: f.issue.ID}, nil
		}
		hasMessage = true // a new issue with a subject and no body: keep an empty message
	}

	f.issue.Activity, f.issue.ActorID = f.now, author.ID
	var msg *store.Message
	if hasMessage {
		msg = &store.Message{AuthorID: author.ID, Date: f.now, MessageID: f.p.messageID,
			InReplyTo: firstBracketed(sub.InReplyTo), References: bracketAll(sub.References),
			Content: content, FullText: full, Summary: summary(content), InboundID: f.inboundID}
	}
	switch {
	case f.isNew && msg != nil:
		err = f.tx.CreateIssueWithMessage(ctx, f.issue, msg) // one statement on PostgreSQL
	case f.isNew:
		err = f.tx.CreateIssue(ctx, f.issue)
	default:
		if err = f.tx.UpdateIssue(ctx, f.issue); err == nil && msg != nil {
			msg.IssueID = f.issue.ID
			err = f.tx.CreateMessage(ctx, msg)
		}
	}
	if err != nil {
		return Result{}, err
	}
	if f.isNew {
		if err := f.createdNote(ctx); err != nil {
			return Result{}, err
		}
	}
	if msg != nil {
		for _, a := range sub.Files {
			file := &store.File{MessageID: msg.ID, Name: a.Name, Type: a.Type, Data: a.Data}
			if err := f.tx.CreateFile(ctx, file); err != nil {
				return Result{}, err
			}
		}
	}
	msgID := int64(0)
	if msg != nil {
		msgID = msg.ID
	}
	f.nosyNote()
	chs := make([]*store.Change, 0, len(f.changes))
	for _, c := range f.changes {
		chs = append(chs, &store.Change{IssueID: f.issue.ID, MessageID: msgID, ActorID: author.ID, At: f.now, Property: c.prop, Old: c.old, New: c.new})
	}
	if err := f.tx.AddChangesLater(ctx, chs); err != nil {
		return Result{}, err
	}
	if err := f.updateNosy(ctx); err != nil {
		return Result{}, err
	}
	if err := f.queueNotifications(ctx, msgID); err != nil {
		return Result{}, err
	}
	if msgID == 0 { // else Filed finds the mail's message
		if err := f.tx.UpdateFiled(ctx, f.p.messageID, author.ID, f.issue.ID, 0); err != nil {
			return Result{}, err
		}
	}
	if err := f.clearBouncing(ctx); err != nil { // mail from the address got through
		return Result{}, err
	}
	return Result{Status: store.InboundFiled, Reason: f.dropped, IssueID: f.issue.ID, MsgID: msgID}, nil
}

// findAuthor finds or creates the author: Resent-From (unless
// keep_real_from), else From, else the envelope sender; and claims the
// mail for the author (store.MarkFiled): store.ErrDuplicate, with the
// author, when it was filed before.
func (f *filing) findAuthor(ctx context.Context) (*store.User, error) {
	sub := f.p.sub
	addr := sub.From
	if sub.ResentFrom != nil && sub.ResentFrom.Addr != "" && !f.g.cfg.MailGW.KeepRealFrom {
		addr = *sub.ResentFrom
	}
	if addr.Addr == "" && f.m.EnvelopeFrom != "" {
		addr = Address{Addr: f.m.EnvelopeFrom}
	}
	if !strings.Contains(addr.Addr, "@") {
		return nil, rejectf("the message has no usable From address")
	}
	if f.g.addr.isTracker(addr.Addr) {
		return nil, rejectf("mail from the tracker's own address %s is not filed", addr.Addr)
	}
	u, err := f.tx.UserByAddressClaim(ctx, addr.Addr, f.p.messageID) // one statement on PostgreSQL
	if !errors.Is(err, store.ErrNotFound) {
		return u, err
	}
	u, err = f.newUser(ctx, addr)
	if err == nil {
		return u, f.tx.MarkFiled(ctx, f.p.messageID, u.ID, 0, 0)
	}
	if errors.Is(err, errUnknownUser) {
		return nil, rejectf("%s is not a user of this tracker: ask its administrator to add you (trackerd user add)", addr.Addr)
	}
	return u, err
}

var errUnknownUser = errors.New("unknown user")

// user finds the user with addr, creating one when mailgw.unknown_sender
// is "create"; errUnknownUser otherwise.
func (f *filing) user(ctx context.Context, addr Address) (*store.User, error) {
	u, err := f.tx.UserByAddress(ctx, addr.Addr)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return f.newUser(ctx, addr)
}

// newUser creates the user with addr, who was not found, when
// mailgw.unknown_sender is "create"; errUnknownUser otherwise.
func (f *filing) newUser(ctx context.Context, addr Address) (*store.User, error) {
	if f.g.cfg.MailGW.UnknownSender != "create" {
		return nil, errUnknownUser
	}
	local, _, _ := strings.Cut(addr.Addr, "@")
	username, err := f.tx.FreeUsername(ctx, local)
	if err != nil {
		return nil, err
	}
	u := &store.User{Username: username, RealName: addr.Name, Address: addr.Addr, Roles: []string{"user"}}
	err = f.tx.CreateUser(ctx, u)
	if errors.Is(err, store.ErrDuplicate) {
		// Another transaction created this sender a moment ago (two of
		// their mails at once): it has committed, so it is visible now.
		return f.tx.UserByAddress(ctx, addr.Addr)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// route finds the issue the mail is for (DESIGN §5 "Finding the issue")
// and leaves it in f.issue (nil: a new issue). title may be replaced by
// the loose fallback.
func (f *filing) route(ctx context.Context, subj *Subject, title *string) (subaddress, error) {
	sub := f.p.sub
	// 1. Sub-address: the envelope first, then the headers.
	cands := append([]string(nil), f.m.Recipients...)
	for _, l := range [][]Address{sub.To, sub.Cc} {
		for _, a := range l {
			cands = append(cands, a.Addr)
		}
	}
	cands = append(cands, sub.DeliveredTo...)
	for _, c := range cands {
		sa, ok := f.g.addr.parse(c)
		if !ok || sa.issueID == 0 {
			continue
		}
		is, err := f.tx.Issue(ctx, sa.issueID)
		if errors.Is(err, store.ErrNotFound) {
			return sa, rejectf("there is no issue %d (the mail was sent to %s)", sa.issueID, c)
		}
		if err != nil {
			return sa, err
		}
		f.issue = is
		return sa, nil
	}
	// 2. The subject's designator.
	if subj.IssueID != 0 {
		is, err := f.tx.Issue(ctx, subj.IssueID)
		switch {
		case err == nil:
			f.issue = is
			return subaddress{}, nil
		case !errors.Is(err, store.ErrNotFound):
			return subaddress{}, err
		case f.g.cfg.MailGW.SubjectPrefixParsing != SubjectLoose:
			return subaddress{}, rejectf("there is no issue %d (named by %s in the subject); to open a new issue, write [issue] or no designator", subj.IssueID, subj.Designator)
		}
		*title = subj.TitleWithDesignator // loose: the designator is title text
	}
	if subj.NewIssue {
		return subaddress{}, nil
	}
	// 3. In-Reply-To, then References from the nearest parent back.
	ids := append([]string(nil), sub.InReplyTo...)
	for i := len(sub.References) - 1; i >= 0; i-- {
		ids = append(ids, sub.References[i])
	}
	for _, id := range ids {
		m, err := f.tx.MessageByMessageID(ctx, "<"+id+">")
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return subaddress{}, err
		}
		is, err := f.tx.Issue(ctx, m.IssueID)
		if err != nil {
			return subaddress{}, err
		}
		f.issue = is
		return subaddress{}, nil
	}
	// 4. The title, when subject_content_match allows it.
	if mode := f.g.matchMode; mode != "never" && *title != "" {
		var since time.Time
		if mode != "always" {
			since = f.now.Add(-f.g.matchWindow)
		}
		is, err := f.tx.IssueByTitle(ctx, *title, since, mode == "activity")
		switch {
		case err == nil:
			f.issue = is
		case !errors.Is(err, store.ErrNotFound):
			return subaddress{}, err
		}
	}
	return subaddress{}, nil
}

// subscription handles mail to +N-subscribe / +N-unsubscribe: it changes
// the sender's membership of the nosy list and files nothing else.
func (f *filing) subscription(ctx context.Context, sa subaddress) (Result, error) {
	var err error
	reason := fmt.Sprintf("subscribed to issue %d", sa.issueID)
	if sa.action == actionSubscribe {
		_, err = f.tx.AddNosy(ctx, sa.issueID, f.author.ID)
	} else {
		reason = fmt.Sprintf("unsubscribed from issue %d", sa.issueID)
		_, err = f.tx.RemoveNosy(ctx, sa.issueID, f.author.ID)
	}
	if err != nil {
		return Result{}, err
	}
	if err := f.tx.UpdateFiled(ctx, f.p.messageID, f.author.ID, sa.issueID, 0); err != nil {
		return Result{}, err
	}
	return Result{Status: store.InboundFiled, Reason: reason, IssueID: sa.issueID}, nil
}

// content chooses the stored text from the body (commands already
// removed), by keep_quoted_text and leave_body_unchanged.
func (f *filing) content(bt *bodyText) string {
	cfg := &f.g.cfg.MailGW
	newIssue := f.issue == nil
	body := bt.base
	if applies(cfg.LeaveBodyUnchanged, newIssue) {
		return strings.TrimSpace(body)
	}
	r := bt.split
	if !bt.hasSplit {
		r = reply.Split(body)
	}
	if applies(cfg.KeepQuotedText, newIssue) {
		if r.Signature != "" {
			if i := strings.LastIndex(body, r.Signature); i >= 0 {
				body = body[:i] + body[i+len(r.Signature):]
			}
		}
		return strings.TrimSpace(body)
	}
	return r.Text
}

// bodyText is the pure text work of filing a mail, done by parse before
// the transaction (so that it runs beside another batch's commit and not
// inside the write lock): the commands off the top of the text (HTML-only
// mail converted first), and the text cut into new text, quotes and
// signature.
type bodyText struct {
	cmds     []Command
	cmdErr   error  // a wrong command: the mail is rejected
	base     string // the text after the commands
	split    reply.Result
	hasSplit bool // split is reply.Split(base); false when it is never needed
}

func (g *Gateway) prepareText(sub *Submission) *bodyText {
	bt := &bodyText{base: sub.Text}
	if sub.TextFromHTML && sub.HTML != "" {
		bt.base = HTMLToText(reply.StripHTML(sub.HTML))
	}
	if g.cfg.MailGW.BodyCommands {
		bt.cmds, bt.base, bt.cmdErr = ParseCommands(bt.base)
	}
	if bt.cmdErr == nil && g.cfg.MailGW.LeaveBodyUnchanged != "yes" {
		bt.split, bt.hasSplit = reply.Split(bt.base), true
	}
	return bt
}

// applies reads a Roundup "yes" | "new" | "no" setting.
func applies(v string, newIssue bool) bool {
	return v == "yes" || (v == "new" && newIssue)
}

// queueErrorReply queues one reply to the sender of a rejected mail,
// never to an automatic or null sender. It reports whether it did.
func (g *Gateway) queueErrorReply(ctx context.Context, tx *store.Tx, m *Mail, p *parsed, inboundID int64, problem string) (bool, error) {
	return g.queueReply(ctx, tx, m, p, inboundID, problem, false)
}

// queueReply queues one reply to the sender of a mail; filed says that the
// mail was filed and only some of what it asked for was not done (the
// reply then says so, and does not return the mail).
func (g *Gateway) queueReply(ctx context.Context, tx *store.Tx, m *Mail, p *parsed, inboundID int64, problem string, filed bool) (bool, error) {
	if m.NullSender || p.sub == nil || p.sub.Class != Normal {
		return false, nil
	}
	to := p.sub.From.Addr
	if p.sub.ResentFrom != nil && p.sub.ResentFrom.Addr != "" && !g.cfg.MailGW.KeepRealFrom {
		to = p.sub.ResentFrom.Addr
	}
	if to == "" {
		to = m.EnvelopeFrom
	}
	if !strings.Contains(to, "@") || g.addr.isTracker(to) {
		return false, nil
	}
	payload, err := json.Marshal(notify.ReplyPayload{InboundID: inboundID, Subject: p.sub.Subject, Problem: problem, InReplyTo: p.messageID, Filed: filed})
	if err != nil {
		return false, err
	}
	if err := tx.EnqueueLater(ctx, &store.Outbox{Kind: notify.KindReply, Recipient: to, Payload: payload}); err != nil {
		return false, fmt.Errorf("queue error reply: %w", err)
	}
	return true, nil
}

// updateNosy applies the nosy rules (package nosy) and the explicit nosy
// changes of this mail.
func (f *filing) updateNosy(ctx context.Context) error {
	if !f.p.authed { // trust.go: an unauthenticated mail subscribes nobody
		return nil
	}
	recips, err := f.recipients(ctx)
	if err != nil {
		return err
	}
	var assignee *nosy.Person
	if f.assignee != nil {
		assignee = &nosy.Person{ID: f.assignee.ID, Address: f.assignee.Address}
	}
	// A new issue's nosy list is exactly who is added here: newNosy keeps
	// it for queueNotifications, which then need not read it back.
	var known map[int64]*store.User
	if f.isNew {
		known = map[int64]*store.User{f.author.ID: f.author}
		for i := range f.recipUsers {
			known[f.recipUsers[i].ID] = f.recipUsers[i]
		}
		if f.assignee != nil {
			known[f.assignee.ID] = f.assignee
		}
		f.newNosy = map[int64]*store.User{}
	}
	for _, p := range nosy.Joiners(f.g.rules, f.isNew, person(f.author), recips, assignee) {
		if _, drop := f.nosyDrop[p.ID]; drop {
			continue
		}
		if err := f.tx.AddNosyLater(ctx, f.issue.ID, p.ID); err != nil {
			return err
		}
		if f.newNosy != nil {
			if u := known[p.ID]; u != nil {
				f.newNosy[p.ID] = u
			} else {
				f.newNosy = nil // not expected: read the list back instead
			}
		}
	}
	for id, u := range f.nosyAdd {
		if err := f.tx.AddNosyLater(ctx, f.issue.ID, id); err != nil {
			return err
		}
		if f.newNosy != nil {
			f.newNosy[id] = u
		}
	}
	for id := range f.nosyDrop {
		if _, err := f.tx.RemoveNosy(ctx, f.issue.ID, id); err != nil {
			return err
		}
		delete(f.newNosy, id)
	}
	return nil
}

// recipients are the people in To and Cc other than the tracker: known
// users, and unknown people created as users when unknown_sender allows.
func (f *filing) recipients(ctx context.Context) ([]nosy.Person, error) {
	var out []nosy.Person
	for _, l := range [][]Address{f.p.sub.To, f.p.sub.Cc} {
		for _, a := range l {
			if !strings.Contains(a.Addr, "@") || f.g.addr.isTracker(a.Addr) {
				continue
			}
			u, err := f.user(ctx, a)
			if errors.Is(err, errUnknownUser) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, person(u))
			f.recipUsers = append(f.recipUsers, u)
		}
	}
	return out, nil
}

func person(u *store.User) nosy.Person {
	return nosy.Person{ID: u.ID, Address: u.Address, Bouncing: u.Bouncing}
}

// queueNotifications writes one outbox row per recipient of this mail.
func (f *filing) queueNotifications(ctx context.Context, msgID int64) error {
	if f.g.opts.Quiet || (msgID == 0 && len(f.changes) == 0) {
		return nil
	}
	var nosyList []nosy.Person
	if f.newNosy != nil {
		// A new issue: its list is what updateNosy added, ordered by id
		// as store.Nosy returns it.
		for _, u := range f.newNosy {
			nosyList = append(nosyList, person(u))
		}
		slices.SortFunc(nosyList, func(a, b nosy.Person) int { return cmp.Compare(a.ID, b.ID) })
	} else {
		members, err := f.tx.Nosy(ctx, f.issue.ID)
		if err != nil {
			return err
		}
		nosyList = make([]nosy.Person, 0, len(members))
		for i := range members {
			nosyList = append(nosyList, person(&members[i]))
		}
	}
	got := map[string]bool{}
	for _, l := range [][]Address{f.p.sub.To, f.p.sub.Cc} {
		for _, a := range l {
			got[strings.ToLower(a.Addr)] = true
		}
	}
	to := nosy.Recipients(f.g.rules, f.isNew, person(f.author), nosyList, got)
	if len(to) == 0 {
		return nil
	}
	notes := make([]string, 0, len(f.changes))
	for _, c := range f.changes {
		notes = append(notes, c.note)
	}
	payload, err := json.Marshal(notify.NotifyPayload{AuthorID: f.author.ID, NewIssue: f.isNew, Changes: notes, MessageID: f.p.messageID})
	if err != nil {
		return err
	}
	for _, p := range to {
		row := &store.Outbox{Kind: notify.KindNotify, IssueID: f.issue.ID, MsgID: msgID, Recipient: p.Address, Payload: payload}
		if err := f.tx.EnqueueLater(ctx, row); err != nil {
			return fmt.Errorf("queue notification: %w", err)
		}
	}
	f.queued = true
	return nil
}

// summary is the first line of the content, at most 80 characters.
func summary(content string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(content), "\n")
	if r := []rune(line); len(r) > 80 {
		line = string(r[:79]) + "…"
	}
	return line
}

func firstBracketed(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return "<" + ids[0] + ">"
}

func bracketAll(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, "<"+id+">")
	}
	return out
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
