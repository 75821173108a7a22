package mailgw

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/metrics"
	"github.com/trackerd/trackerd/mailgw/auth"
	"github.com/trackerd/trackerd/nosy"
	"github.com/trackerd/trackerd/store"
)

// Mail is one incoming mail as a source hands it over: the exact bytes and
// what the transport knew about it.
type Mail struct {
	// Raw is the message byte for byte; the gateway keeps it unchanged.
	Raw []byte
	// Source is how it came: "smtp", "lmtp", "deliver", "import",
	// "imap:NAME", "pop3:NAME".
	Source string
	// EnvelopeFrom is MAIL FROM (or deliver's -from); "" when the source
	// has no envelope. NullSender is true for MAIL FROM:<>, which RFC 5321
	// §4.5.5 reserves for bounces and automatic replies.
	EnvelopeFrom string
	NullSender   bool
	// Recipients are RCPT TO (or deliver's -to); empty when the source has
	// no envelope, in which case To/Cc/Delivered-To route the mail.
	Recipients []string
	// Received is when it arrived; zero means now.
	Received time.Time
	// RefuseInline is set by a source that tells the sender of a rejected
	// mail itself, in its own protocol (the SMTP/LMTP listener's 5xx
	// reply, which the sending MTA turns into a bounce): the gateway then
	// queues no error reply, so the sender hears of it once.
	RefuseInline bool
	// Log, when set, is the logger for this mail's lines, carrying the
	// source's own keys (the listener's conn_id and remote); nil means
	// the gateway's logger.
	Log *slog.Logger
	// Auth is the SMTP listener's own verdict on the sender (trust.go);
	// it is archived as the mail's first Authentication-Results field.
	// nil: the trusted hosts' Authentication-Results fields are read.
	Auth *auth.Verdict
}

// Result is what became of one mail.
type Result struct {
	Status    string // store.Inbound* status: filed, ignored, rejected
	Reason    string // why it was ignored or rejected: the text the sender is told
	IssueID   int64
	MsgID     int64 // the stored message; 0 when none was filed
	InboundID int64
	MessageID string // the Message-ID it was filed under (generated when absent)
	Duplicate bool   // filed before: acknowledged, not filed again
	Replied   bool   // an error reply to the sender was queued
}

// Gateway files mail into the store: the one path every source takes
// (DESIGN §1). It is safe for concurrent use.
type Gateway struct {
	st     *store.Store
	cfg    *config.Config
	log    *slog.Logger
	limits Limits
	addr   trackerAddress
	rules  nosy.Rules // cfg.Nosy, as package nosy takes it
	// matchMode ("never", "always", "creation", "activity") and
	// matchWindow are mailgw.subject_content_match, parsed once.
	matchMode   string
	matchWindow time.Duration
	// now is the clock; tests replace it.
	now  func() time.Time
	opts Options
}

// Options are the knobs of a Gateway beyond the config.
type Options struct {
	// OnCommit, when set, is called after every commit that queued mail
	// to send (the notifier's kick).
	OnCommit func()
	// Quiet files mail without queueing any notification or error reply
	// (import -quiet of an old archive).
	Quiet bool
}

// New returns a gateway filing into st by the rules of cfg, which must
// have passed cfg.Validate.
func New(st *store.Store, cfg *config.Config, log *slog.Logger, opts Options) *Gateway {
	g := &Gateway{
		st:     st,
		cfg:    cfg,
		log:    log,
		limits: Limits{MaxBytes: cfg.SMTP.MaxMessageBytes},
		addr:   newTrackerAddress(cfg.Tracker.Address, cfg.Tracker.SubaddressSeparator),
		rules:  nosy.Rules{AddAuthor: cfg.Nosy.AddAuthor, AddRecipients: cfg.Nosy.AddRecipients, MessagesToAuthor: cfg.Nosy.MessagesToAuthor},
		now:    time.Now,
		opts:   opts,
	}
	var err error
	if g.matchMode, g.matchWindow, err = config.ParseContentMatch(cfg.MailGW.SubjectContentMatch); err != nil {
		g.matchMode = "never" // unreachable after Validate; never match rather than guess
	}
	return g
}

// Deliver files one mail in its own transaction. A returned error is a
// temporary fault of ours (the store): nothing was stored and the caller
// must not acknowledge the mail. Otherwise the Result says what happened,
// and it has been committed.
func (g *Gateway) Deliver(ctx context.Context, m Mail) (Result, error) {
	rs, err := g.DeliverBatch(ctx, []Mail{m})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// DeliverBatch files several mails in one transaction (group commit), each
// in its own savepoint so that one mail's rejection does not undo the
// others. Either everything commits and there is one Result per mail, or
// err is non-nil and nothing was stored.
func (g *Gateway) DeliverBatch(ctx context.Context, ms []Mail) ([]Result, error) {
	start := time.Now()
	for i := range ms {
		metrics.MailsReceived.WithLabelValues(metrics.Source(ms[i].Source)).Inc()
	}
	ps := make([]parsed, len(ms))
	for i := range ms {
		ps[i] = g.parse(&ms[i]) // pure work, outside the transaction
	}
	return g.deliverParsed(ctx, ms, ps, start)
}

// deliverParsed is DeliverBatch after parsing: ps[i] is g.parse(&ms[i]),
// done by the caller (the SMTP listener parses on each session's
// goroutine, so that parsing runs beside the commit of the previous
// batch). start is when the mails were handed over, for the latency
// metric.
func (g *Gateway) deliverParsed(ctx context.Context, ms []Mail, ps []parsed, start time.Time) ([]Result, error) {
	rs := make([]Result, len(ms))
	queued := false
	var err error
	// Concurrent batches (two pollers, the listener's committers, several
	// instances) can conflict on PostgreSQL: a deadlock when they create
	// the same new senders in another order, a unique violation when both
	// create one. The transaction is a function of ms alone, so it is run
	// again, a few times, after a short random pause.
	for attempt := 1; ; attempt++ {
		err = g.st.Tx(ctx, func(tx *store.Tx) error {
			queued = false
			// The archive ids of the batch in one statement: each
			// mail's archive row is then written at commit, once,
			// with its outcome (store.InsertInboundLater).
			if err := tx.ReserveInbound(ctx, len(ms)); err != nil {
				return err
			}
			for i := range ms {
				r, q, err := g.apply(ctx, tx, &ms[i], &ps[i], nil)
				if err != nil {
					return err
				}
				rs[i], queued = r, queued || q
			}
			return nil
		})
		if err == nil || attempt == maxConflictAttempts || !store.Conflict(err) || ctx.Err() != nil {
			break
		}
		g.log.Warn("transaction conflict, filing the batch again", "mails", len(ms), "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		// Long enough for the transaction that won to finish: run again
		// while it still holds its rows, the batch would meet it again.
		case <-time.After(time.Duration(attempt*(20+rand.IntN(80))) * time.Millisecond):
		}
	}
	if err != nil {
		for i := range ms {
			metrics.IngestErrors.WithLabelValues(metrics.Source(ms[i].Source)).Inc()
		}
		return nil, fmt.Errorf("mailgw: file mail: %w", err)
	}
	took := time.Since(start).Seconds()
	for i := range rs {
		g.logResult(&ms[i], &rs[i])
		src := metrics.Source(ms[i].Source)
		metrics.MailsProcessed.WithLabelValues(src, rs[i].Status).Inc()
		metrics.IngestSeconds.WithLabelValues(src).Observe(took)
	}
	if queued && g.opts.OnCommit != nil {
		g.opts.OnCommit()
	}
	return rs, nil
}

// maxConflictAttempts is how often a batch is run when concurrent
// transactions conflict (store.Conflict).
const maxConflictAttempts = 6

// Reprocess runs the current parser and rules again on an archived mail
// that was not filed (rejected, ignored, quarantined or failed) and
// updates its archive row. A mail that was filed is left alone.
func (g *Gateway) Reprocess(ctx context.Context, inboundID int64) (Result, error) {
	var res Result
	queued := false
	var m Mail
	err := g.st.Tx(ctx, func(tx *store.Tx) error {
		in, err := tx.Inbound(ctx, inboundID)
		if err != nil {
			return err
		}
		if in.Status == store.InboundFiled {
			res = Result{Status: in.Status, Reason: "already filed", IssueID: in.IssueID, MsgID: in.MsgID, InboundID: in.ID, MessageID: in.MessageID}
			return nil
		}
		m = Mail{Raw: in.Raw, Source: in.Source, EnvelopeFrom: in.EnvelopeFrom, Recipients: in.EnvelopeTo, Received: in.Received}
		if in.EnvelopeFrom == nullPath { // see apply
			m.EnvelopeFrom, m.NullSender = "", true
		}
		g.unarchive(&m) // trust.go
		p := g.parse(&m)
		p.release = in.Status == store.InboundQuarantined // limits.go
		res, queued, err = g.apply(ctx, tx, &m, &p, in)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("mailgw: reprocess %d: %w", inboundID, err)
	}
	g.logResult(&m, &res)
	if queued && g.opts.OnCommit != nil {
		g.opts.OnCommit()
	}
	return res, nil
}

func (g *Gateway) logResult(m *Mail, r *Result) {
	log := g.log
	if m.Log != nil {
		log = m.Log
	}
	log.Info("mail "+r.Status, "source", m.Source, "message_id", r.MessageID, "issue_id", r.IssueID,
		"msg_id", r.MsgID, "inbound_id", r.InboundID, "reason", r.Reason, "duplicate", r.Duplicate)
}

// parsed is a mail after Parse, with what was derived from it before the
// transaction.
type parsed struct {
	sub       *Submission
	err       error     // Parse failed: the mail is rejected
	messageID string    // "<id>": the Message-ID, or one made from the raw bytes' hash
	text      *bodyText // the text work of filing; nil when the mail will not be filed
	// authed: the mail may change things (trust.go); why says why not.
	authed bool
	why    string
	// release: a quarantined mail released by Reprocess (limits.go).
	release bool
}

func (g *Gateway) parse(m *Mail) parsed {
	var p parsed
	p.sub, p.err = Parse(m.Raw, g.limits)
	if p.sub != nil && p.sub.MessageID != "" {
		p.messageID = "<" + p.sub.MessageID + ">"
	} else {
		// Without a Message-ID the raw bytes decide idempotency (DESIGN §5).
		h := sha256.Sum256(m.Raw)
		p.messageID = "<" + hex.EncodeToString(h[:16]) + "@" + g.addr.domain + ">"
	}
	if p.err == nil && p.sub != nil && p.sub.Class == Normal {
		p.text = g.prepareText(p.sub)
	}
	g.judge(m, &p)
	return p
}

// rejection is a definite fault of the sender's: the mail is kept as
// rejected and the sender is told why.
type rejection struct{ reason string }

func (r *rejection) Error() string { return r.reason }

func rejectf(format string, args ...any) error {
	return &rejection{reason: fmt.Sprintf(format, args...)}
}

// apply files one parsed mail inside tx and reports whether it queued
// outbox rows. in is the archive row to update (Reprocess), or nil to
// archive the mail as a new row.
func (g *Gateway) apply(ctx context.Context, tx *store.Tx, m *Mail, p *parsed, in *store.Inbound) (Result, bool, error) {
	if in == nil {
		from := m.EnvelopeFrom
		if m.NullSender {
			// The archive keeps "<>" for a null sender, so that "no
			// envelope" ("") and "bounce" stay apart for Reprocess.
			from = nullPath
		}
		in = &store.Inbound{
			Received:     m.Received,
			Source:       m.Source,
			EnvelopeFrom: from,
			EnvelopeTo:   m.Recipients,
			Raw:          g.archived(m),
			MessageID:    p.messageID,
			Status:       store.InboundReceived,
		}
		if in.Received.IsZero() {
			in.Received = g.now()
		}
		if err := tx.InsertInboundLater(ctx, in); err != nil {
			return Result{}, false, fmt.Errorf("archive raw mail: %w", err)
		}
	}
	var res Result
	queued := false
	if tok := g.bounceToken(m, p); tok != "" {
		// A bounce of a notification: never filed, counted (bounce.go).
		reason, err := g.countBounce(ctx, tx, p, in.ID, tok)
		if err != nil {
			return Result{}, false, err
		}
		res = Result{Status: store.InboundIgnored, Reason: reason}
	} else if reason := g.neverFile(m, p); reason != "" {
		res = Result{Status: store.InboundIgnored, Reason: reason}
	} else if p.err != nil {
		res = Result{Status: store.InboundRejected, Reason: "the message could not be read: " + p.err.Error()}
	} else {
		err := tx.Savepoint(ctx, func(tx *store.Tx) error {
			f := &filing{g: g, tx: tx, m: m, p: p, inboundID: in.ID, now: g.now().UTC(),
				nosyAdd: map[int64]*store.User{}, nosyDrop: map[int64]*store.User{}}
			var err error
			res, err = f.file(ctx)
			queued = f.queued
			return err
		})
		var rej *rejection
		var q *quarantine
		switch {
		case errors.As(err, &rej):
			res, queued = Result{Status: store.InboundRejected, Reason: rej.reason}, false
		case errors.As(err, &q):
			res, queued = Result{Status: store.InboundQuarantined, Reason: q.reason}, false
		case err != nil:
			return Result{}, false, err
		}
	}
	res.InboundID, res.MessageID = in.ID, p.messageID
	in.Status, in.Reason, in.IssueID, in.MsgID, in.MessageID = res.Status, res.Reason, res.IssueID, res.MsgID, p.messageID
	if err := tx.UpdateInboundLater(ctx, in); err != nil {
		return Result{}, false, fmt.Errorf("archive raw mail: %w", err)
	}
	if res.Status == store.InboundRejected && !g.opts.Quiet && !m.RefuseInline {
		ok, err := g.queueErrorReply(ctx, tx, m, p, in.ID, res.Reason)
		if err != nil {
			return Result{}, false, err
		}
		res.Replied = ok
		queued = queued || ok
	}
	return res, queued, nil
}

// neverFile returns why a mail must not be filed at all (DESIGN §5 "What is
// never filed"), or "".
func (g *Gateway) neverFile(m *Mail, p *parsed) string {
	if p.sub != nil && p.sub.Class != Normal {
		return p.sub.Class.String() + ": " + p.sub.ClassReason
	}
	if m.NullSender {
		return "bounce: null envelope sender"
	}
	for _, rcpt := range m.Recipients {
		if r, ok := g.addr.parse(rcpt); ok && r.action == actionBounce {
			return "bounce: sent to the bounce address"
		}
	}
	if p.sub != nil && g.cfg.MailGW.IgnoreListMail && p.sub.ListMail {
		return "list mail (mailgw.ignore_list_mail)"
	}
	return ""
}

// nullPath is how the archive records a null envelope sender.
const nullPath = "<>"

// Sub-address actions (DESIGN §5 "Addressing").
const (
	actionNone        = ""
	actionSubscribe   = "subscribe"
	actionUnsubscribe = "unsubscribe"
	actionBounce      = "bounce"
)

// subaddress is what a tracker address names.
type subaddress struct {
	issueID int64
	action  string
	token   string // the bounce token
}

// trackerAddress recognises the tracker's address and its sub-addresses.
type trackerAddress struct {
	local, domain, sep string
}

func newTrackerAddress(addr, sep string) trackerAddress {
	local, domain, _ := strings.Cut(addr, "@")
	return trackerAddress{local: strings.ToLower(local), domain: strings.ToLower(domain), sep: sep}
}

// isTracker reports whether addr is the tracker's address or one of its
// sub-addresses (the only recipients the tracker accepts).
func (t trackerAddress) isTracker(addr string) bool {
	_, ok := t.parse(addr)
	return ok
}

// parse reads a tracker address: the plain address (zero subaddress),
// local+N, local+N-subscribe, local+N-unsubscribe or local+bounce-TOKEN.
// ok is false for any other address, including a malformed sub-address.
func (t trackerAddress) parse(addr string) (subaddress, bool) {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	local, domain, found := strings.Cut(strings.ToLower(addr), "@")
	if !found || domain != t.domain {
		return subaddress{}, false
	}
	if local == t.local {
		return subaddress{}, true
	}
	detail, ok := strings.CutPrefix(local, t.local+t.sep)
	if !ok || detail == "" {
		return subaddress{}, false
	}
	if tok, ok := strings.CutPrefix(detail, "bounce-"); ok && tok != "" {
		return subaddress{action: actionBounce, token: tok}, true
	}
	num, action, _ := strings.Cut(detail, "-")
	switch action {
	case actionNone, actionSubscribe, actionUnsubscribe:
	default:
		return subaddress{}, false
	}
	var id int64
	for _, c := range num {
		if c < '0' || c > '9' || id > 1e15 {
			return subaddress{}, false
		}
		id = id*10 + int64(c-'0')
	}
	if id == 0 {
		return subaddress{}, false
	}
	return subaddress{issueID: id, action: action}, true
}

// IsTrackerAddress reports whether addr is the tracker's address or a
// valid sub-address of it; listeners use it to refuse relaying.
func (g *Gateway) IsTrackerAddress(addr string) bool { return g.addr.isTracker(addr) }
