package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/store"
	"github.com/trackerd/trackerd/web"
)

// Exit codes of deliver, from sysexits(3), as MTAs read them.
const (
	exitDataErr = 65 // EX_DATAERR: an unusable message that was not answered
	exitNoUser  = 67 // EX_NOUSER: a recipient that is not the tracker
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// optString is a string flag that knows whether it was given, so that
// `-from ""` (a null sender) differs from no -from at all.
type optString struct {
	value string
	set   bool
}

func (o *optString) String() string     { return o.value }
func (o *optString) Set(s string) error { o.value, o.set = s, true; return nil }

// mailEnv is what the mail commands share: config, logger, store, gateway.
type mailEnv struct {
	cfg *config.Config
	log *slog.Logger // the gateway's and notifier's: quieter for bulk work
	st  *store.Store
	gw  *mailgw.Gateway
}

// openMail opens what the mail commands need. bulk is for import: the
// gateway's one line per mail is logged only at debug level, and quiet
// files without queueing notifications.
func (a *app) openMail(ctx context.Context, bulk, quiet bool) (*mailEnv, error) {
	cfg, st, err := a.loadStore(ctx)
	if err != nil {
		return nil, err
	}
	log := newLogger(cfg.Log, a.stderr)
	if bulk && cfg.Log.Level != "debug" {
		log = newLogger(config.Log{Level: "warn", Format: cfg.Log.Format}, a.stderr)
	}
	gw := mailgw.New(st, cfg, log, mailgw.Options{Quiet: quiet})
	return &mailEnv{cfg: cfg, log: log, st: st, gw: gw}, nil
}

// cmdDeliver files one message from stdin, for an MTA's pipe transport or
// alias. Exit 0: filed, ignored or answered; 65: unusable and not
// answered (the MTA bounces it); 67: a recipient is not the tracker; 75:
// our temporary fault (the MTA retries).
func cmdDeliver(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("deliver")
	var from optString
	var to stringList
	fs.Var(&from, "from", "envelope sender (`ADDR`; \"\" or \"<>\" for a bounce)")
	fs.Var(&to, "to", "envelope recipient (`ADDR`, repeatable); default: route by the headers")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := needArgs(pos, 0, "deliver [-from ADDR] [-to ADDR]... < message"); err != nil {
		return err
	}
	e, err := a.openMail(ctx, false, false)
	if err != nil {
		return err
	}
	defer e.st.Close()
	for _, rcpt := range to {
		if !e.gw.IsTrackerAddress(rcpt) {
			return &exitError{code: exitNoUser, err: fmt.Errorf("deliver: %s is not an address of this tracker (%s)", rcpt, e.cfg.Tracker.Address)}
		}
	}
	limit := e.cfg.SMTP.MaxMessageBytes
	raw, err := io.ReadAll(io.LimitReader(a.stdin, limit+1))
	if err != nil {
		return &exitError{code: exitTempFail, err: fmt.Errorf("deliver: read message: %w", err)}
	}
	if int64(len(raw)) > limit {
		return &exitError{code: exitDataErr, err: fmt.Errorf("deliver: the message is larger than smtp.max_message_bytes (%d bytes)", limit)}
	}
	m := mailgw.Mail{Raw: raw, Source: "deliver", EnvelopeFrom: from.value, Recipients: to}
	m.NullSender = from.set && mailgw.IsNullSender(from.value)
	if m.NullSender {
		m.EnvelopeFrom = ""
	}
	res, err := e.gw.Deliver(ctx, m)
	if err != nil {
		return &exitError{code: exitTempFail, err: fmt.Errorf("deliver: %w", err)}
	}
	fmt.Fprintf(a.stdout, "%s %s issue=%d msg=%d inbound=%d %s\n", res.Status, res.MessageID, res.IssueID, res.MsgID, res.InboundID, res.Reason)
	a.flushOutbox(ctx, e)
	if res.Status == store.InboundRejected && !res.Replied {
		return &exitError{code: exitDataErr, err: fmt.Errorf("deliver: not filed: %s", res.Reason)}
	}
	return nil
}

// importBatch is how many mails import files per transaction: large
// enough that the commit's fsync is shared, small enough that a failure
// redoes little.
const importBatch = 256

// cmdImport files every mail of an mbox file or a Maildir.
func cmdImport(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("import")
	quiet := fs.Bool("quiet", false, "file without notifying anyone or replying (for old archives)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	const usage = "import mbox|maildir PATH [-quiet]"
	if err := needArgs(pos, 2, usage); err != nil {
		return err
	}
	kind, path := pos[0], pos[1]
	if kind != "mbox" && kind != "maildir" {
		return usageErrorf("usage: trackerd %s", usage)
	}
	e, err := a.openMail(ctx, true, *quiet)
	if err != nil {
		return err
	}
	defer e.st.Close()

	var bar *progressbar.ProgressBar
	if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		size := int64(-1)
		if kind == "mbox" {
			if fi, err := os.Stat(path); err == nil {
				size = fi.Size()
			}
		}
		bar = progressbar.DefaultBytes(size, "importing")
	}
	start := time.Now()
	counts := map[string]int{}
	duplicates := 0
	var batch []mailgw.Mail
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rs, err := e.gw.DeliverBatch(ctx, batch)
		if err != nil {
			return err
		}
		for _, r := range rs {
			counts[r.Status]++
			if r.Duplicate {
				duplicates++
			}
		}
		if bar != nil {
			n := 0
			for _, m := range batch {
				n += len(m.Raw)
			}
			_ = bar.Add(n)
		}
		batch = batch[:0]
		return nil
	}
	add := func(raw []byte) error {
		batch = append(batch, mailgw.Mail{Raw: raw, Source: "import"})
		if len(batch) >= importBatch {
			return flush()
		}
		return nil
	}
	switch kind {
	case "mbox":
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		err = mailgw.ReadMbox(f, add)
		if err == nil {
			err = flush()
		}
		if err != nil {
			return &exitError{code: exitTempFail, err: fmt.Errorf("import: %w", err)}
		}
	case "maildir":
		files, err := mailgw.MaildirFiles(path)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		for _, name := range files {
			raw, err := os.ReadFile(name)
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			if err := add(raw); err != nil {
				return &exitError{code: exitTempFail, err: fmt.Errorf("import: %w", err)}
			}
		}
		if err := flush(); err != nil {
			return &exitError{code: exitTempFail, err: fmt.Errorf("import: %w", err)}
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(a.stdout)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	took := time.Since(start)
	fmt.Fprintf(a.stdout, "imported %d mails: %d filed, %d ignored (%d duplicates), %d rejected in %.2fs (%.0f mails/s)\n",
		total, counts[store.InboundFiled], counts[store.InboundIgnored], duplicates, counts[store.InboundRejected],
		took.Seconds(), float64(total)/took.Seconds())
	if !*quiet {
		start = time.Now()
		sent := a.flushOutbox(ctx, e)
		fmt.Fprintf(a.stdout, "sent %d notifications and replies in %.2fs\n", sent, time.Since(start).Seconds())
	}
	return nil
}

// cmdInbound inspects and re-runs the raw archive.
func cmdInbound(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("inbound")
	asJSON := fs.Bool("json", false, "list: print JSON (DESIGN §3 shape)")
	status := fs.String("status", "", "list, reprocess: only mail with this status")
	limit := fs.Int("limit", 0, "list: print at most N rows (0: all)")
	raw := fs.Bool("raw", false, "show: print only the raw message, byte for byte")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	const usage = "inbound list [-json] [-status S] [-limit N] | inbound show ID [-raw] | inbound reprocess ID...|-status S"
	if len(pos) == 0 {
		return usageErrorf("usage: trackerd %s", usage)
	}
	e, err := a.openMail(ctx, false, false)
	if err != nil {
		return err
	}
	defer e.st.Close()
	switch pos[0] {
	case "list":
		if err := needArgs(pos, 1, "inbound list [-json] [-status S] [-limit N]"); err != nil {
			return err
		}
		rows, err := e.st.ListInbound(ctx, store.InboundFilter{Status: *status, Limit: *limit})
		if err != nil {
			return fmt.Errorf("inbound list: %w", err)
		}
		if *asJSON {
			out := make([]web.Inbound, 0, len(rows))
			for i := range rows {
				out = append(out, web.NewInbound(&rows[i]))
			}
			return writeJSON(a, out)
		}
		for _, r := range rows {
			fmt.Fprintf(a.stdout, "%d\t%s\t%s\t%s\t%s\tissue=%d\t%s\n", r.ID, r.Received.Format("2006-01-02 15:04:05"), r.Source, r.Status, r.MessageID, r.IssueID, r.Reason)
		}
		return nil
	case "show":
		if err := needArgs(pos, 2, "inbound show ID [-raw]"); err != nil {
			return err
		}
		id, err := parseID(pos[1])
		if err != nil {
			return err
		}
		in, err := e.st.Inbound(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("inbound show: there is no archived mail %d", id)
		}
		if err != nil {
			return fmt.Errorf("inbound show: %w", err)
		}
		if !*raw {
			fmt.Fprintf(a.stdout, "id:       %d\nreceived: %s\nsource:   %s\nfrom:     %s\nto:       %s\nmessage:  %s\nstatus:   %s\nreason:   %s\nissue:    %d\nmsg:      %d\nsha256:   %s\n\n",
				in.ID, in.Received.Format("2006-01-02T15:04:05Z07:00"), in.Source, in.EnvelopeFrom, strings.Join(in.EnvelopeTo, ", "),
				in.MessageID, in.Status, in.Reason, in.IssueID, in.MsgID, in.SHA256)
		}
		_, err = a.stdout.Write(in.Raw)
		return err
	case "reprocess":
		var ids []int64
		for _, s := range pos[1:] {
			id, err := parseID(s)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if *status != "" {
			rows, err := e.st.ListInbound(ctx, store.InboundFilter{Status: *status})
			if err != nil {
				return fmt.Errorf("inbound reprocess: %w", err)
			}
			for i := len(rows) - 1; i >= 0; i-- { // oldest first
				ids = append(ids, rows[i].ID)
			}
		}
		if len(ids) == 0 {
			return usageErrorf("usage: trackerd inbound reprocess ID... | -status S")
		}
		for _, id := range ids {
			res, err := e.gw.Reprocess(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("inbound reprocess: there is no archived mail %d", id)
			}
			if err != nil {
				return &exitError{code: exitTempFail, err: fmt.Errorf("inbound reprocess: %w", err)}
			}
			fmt.Fprintf(a.stdout, "%d\t%s\tissue=%d\t%s\n", id, res.Status, res.IssueID, res.Reason)
		}
		a.flushOutbox(ctx, e)
		return nil
	}
	return usageErrorf("usage: trackerd %s", usage)
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErrorf("%q is not an id", s)
	}
	return id, nil
}

var _ flag.Value = (*optString)(nil)

// outboxUsage is the outbox command's synopsis.
const outboxUsage = `outbox list [-json] [-status S] [-limit N]
       outbox retry ID... | -status S
       outbox drop ID... | -status S`

// cmdOutbox inspects and steers the notification queue: list it, put rows
// back in the queue due now (and send them at once, as deliver does), or
// drop them.
func cmdOutbox(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("outbox")
	asJSON := fs.Bool("json", false, "list: print JSON (DESIGN §3 shape)")
	status := fs.String("status", "", "only rows with this status (pending, sent, failed)")
	limit := fs.Int("limit", 0, "list: print at most N rows (0: all)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("usage: trackerd %s", outboxUsage)
	}
	switch pos[0] {
	case "list":
		if err := needArgs(pos, 1, "outbox list [-json] [-status S] [-limit N]"); err != nil {
			return err
		}
		_, st, err := a.loadStore(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		rows, err := st.ListOutbox(ctx, store.OutboxFilter{Status: *status, Limit: *limit})
		if err != nil {
			return fmt.Errorf("outbox list: %w", err)
		}
		if *asJSON {
			out := make([]web.Outbox, 0, len(rows))
			for i := range rows {
				out = append(out, web.NewOutbox(&rows[i]))
			}
			return writeJSON(a, out)
		}
		for _, r := range rows {
			fmt.Fprintf(a.stdout, "%d\t%s\tissue=%d\t%s\t%s\tattempts=%d\t%s\n", r.ID, r.Kind, r.IssueID, r.Recipient, r.Status, r.Attempts, r.LastError)
		}
		return nil
	case "retry", "drop":
		sel := store.OutboxSelection{Status: *status}
		for _, s := range pos[1:] {
			id, err := parseID(s)
			if err != nil {
				return err
			}
			sel.IDs = append(sel.IDs, id)
		}
		if (len(sel.IDs) == 0) == (sel.Status == "") {
			return usageErrorf("usage: trackerd outbox %s ID... | -status S (one or the other)", pos[0])
		}
		if sel.Status != "" && sel.Status != store.OutboxPending && sel.Status != store.OutboxSent && sel.Status != store.OutboxFailed {
			return usageErrorf("unknown status %q (pending, sent, failed)", sel.Status)
		}
		if pos[0] == "drop" {
			_, st, err := a.loadStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := st.DropOutbox(ctx, sel)
			if err != nil {
				return fmt.Errorf("outbox drop: %w", err)
			}
			for _, r := range rows {
				fmt.Fprintf(a.stdout, "dropped %d\t%s\t%s\t%s\n", r.ID, r.Kind, r.Recipient, r.Status)
			}
			fmt.Fprintf(a.stdout, "dropped %d rows\n", len(rows))
			return nil
		}
		e, err := a.openMail(ctx, false, false)
		if err != nil {
			return err
		}
		defer e.st.Close()
		rows, err := e.st.RetryOutbox(ctx, sel)
		if err != nil {
			return fmt.Errorf("outbox retry: %w", err)
		}
		fmt.Fprintf(a.stdout, "queued %d rows again\n", len(rows))
		if n := len(sel.IDs) - len(rows); len(sel.IDs) > 0 && n > 0 {
			// Missing, or held by a notifier sending them now (issue 9).
			fmt.Fprintf(a.stdout, "left %d rows alone: no such row, or a notifier is sending it now (its claim lasts outgoing.claim_lease)\n", n)
		}
		if len(rows) > 0 {
			sent := a.flushOutbox(ctx, e)
			fmt.Fprintf(a.stdout, "sent %d\n", sent)
		}
		return nil
	}
	return usageErrorf("usage: trackerd %s", outboxUsage)
}
