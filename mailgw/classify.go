package mailgw

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// Class says what kind of mail a Submission is. Only Normal mail is ever
// filed; every other class is kept in the raw archive with ClassReason
// and never creates an issue, a message or a notification (DESIGN §5,
// "What is never filed"). List mail is not a class: see
// Submission.ListMail.
//
// Parse classifies from the header and the MIME structure; the first rule
// that matches wins:
//
//  1. Loop: an X-Tracker-Loop header, whatever its value.
//  2. Reports by structure: multipart/report with report-type
//     delivery-status, or any message/delivery-status part → Bounce;
//     disposition-notification → ReadReceipt; feedback-report →
//     FeedbackReport; tlsrpt → DMARCReport.
//  3. DMARC aggregate report: a zip/gzip/xml part and a "Report Domain:"
//     subject or a From address mentioning dmarc → DMARCReport.
//  4. Bounces without a report: From MAILER-DAEMON (any domain); From
//     postmaster or "Mail Delivery ..." with a bounce subject
//     ("Undelivered Mail Returned to Sender", "Delivery Status
//     Notification", "Mail delivery failed", "failure notice",
//     "Undeliverable:", "Returned mail:" ...); a bounce subject with
//     Auto-Submitted or a null Return-Path; an X-Failed-Recipients
//     header → Bounce. This comes before the auto-reply headers because
//     MTAs mark bounces Auto-Submitted too.
//  5. Auto-reply headers: Auto-Submitted other than "no" (RFC 3834),
//     X-Autoreply, X-Autorespond, X-Autoresponse, Precedence bulk, junk
//     or auto_reply → AutoReply.
//  6. Vacation and auto-reply subjects ("Out of Office:", "Automatic
//     reply:", "Autoreply:", "Auto:", "Abwesenheitsnotiz:", "Réponse
//     automatique :", "Automatische Antwort:", "Risposta automatica:",
//     "Respuesta automática:", "自动回复:", RT's "[rt #1] AutoReply:", a
//     trailing "(Automatic Response)" ...) → AutoReply.
//  7. A null sender visible in the message (Return-Path: <>,
//     X-Envelope-From: <>, an mbox "From MAILER-DAEMON" line) → Bounce.
//  8. Otherwise Normal.
//
// The SMTP envelope is not part of the message: a caller that has it
// must also treat a null envelope sender as a Bounce (see IsNullSender).
type Class int

const (
	// Normal mail written by a person: file it.
	Normal Class = iota
	// AutoReply is any automatic response or machine-generated mail:
	// RFC 3834 Auto-Submitted other than "no", X-Autoreply and friends,
	// Precedence: bulk/junk/auto_reply, vacation subjects.
	AutoReply
	// Bounce is a delivery status notification (RFC 3464) or a
	// non-standard bounce from a mailer daemon; Submission.Bounce says
	// for whom when that can be read.
	Bounce
	// ReadReceipt is a message disposition notification (RFC 8098).
	ReadReceipt
	// FeedbackReport is an abuse / feedback-loop report (RFC 5965 ARF).
	FeedbackReport
	// DMARCReport is a DMARC aggregate report (RFC 7489 §7.2) or an SMTP
	// TLS report (RFC 8460).
	DMARCReport
	// Loop is mail carrying an X-Tracker-Loop header: our own
	// notification, or another tracker's, coming back.
	Loop
)

// String returns the class name used in logs and the inbound archive.
func (c Class) String() string {
	switch c {
	case Normal:
		return "normal"
	case AutoReply:
		return "auto-reply"
	case Bounce:
		return "bounce"
	case ReadReceipt:
		return "read-receipt"
	case FeedbackReport:
		return "feedback-report"
	case DMARCReport:
		return "dmarc-report"
	case Loop:
		return "loop"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// BounceInfo is what a bounce says about the failed delivery.
type BounceInfo struct {
	// Recipients are the addresses that failed or were delayed, as the
	// report wrote them (without "rfc822;" and brackets), each once.
	Recipients []string
	// Hard is true for a permanent failure: a 5.x.x status, or a failed
	// action without a status.
	Hard bool
	// Status is the RFC 3463 status code of the first recipient, e.g.
	// "5.1.1"; "" when the bounce gives none.
	Status string
}

// IsNullSender reports whether an SMTP envelope sender (MAIL FROM, or the
// sender an MTA passes to a pipe) is the null reverse-path that RFC 5321
// §4.5.5 reserves for bounces and other automatic replies: "", "<>", or
// "MAILER-DAEMON" without a domain (how Postfix pipe(8) and sendmail
// spell it).
//
// The envelope is not part of the raw message, so Parse cannot see it. A
// caller that has the envelope must apply the rule itself: a Submission
// whose Class is Normal but whose envelope sender is null is a Bounce
// (reason "null sender").
func IsNullSender(envelopeFrom string) bool {
	s := strings.TrimSpace(envelopeFrom)
	return s == "" || s == "<>" || strings.EqualFold(s, "MAILER-DAEMON") || strings.EqualFold(s, "<MAILER-DAEMON>")
}

// structure collects what the MIME walk saw that classification needs.
type structure struct {
	reportTypes []string // report-type parameters of multipart/report parts
	dsn         bool     // a message/delivery-status part
	mdn         bool     // a message/disposition-notification part
	arf         bool     // a message/feedback-report part
	tlsrpt      bool     // an application/tlsrpt+* part
	archive     bool     // a zip/gzip/xml part (DMARC aggregate reports)
	recipients  []dsnRecipient
}

type dsnRecipient struct {
	addr, action, status string
}

func (st *structure) reportType(t string) bool {
	for _, r := range st.reportTypes {
		if r == t {
			return true
		}
	}
	return false
}

var (
	// bounceSubjectRE matches the subjects MTAs give bounces and delay
	// warnings, at the start of the subject.
	bounceSubjectRE = regexp.MustCompile(`(?i)^\s*(?:` +
		`undelivered mail|undeliverable|undelivered|delivery status notification|` +
		`mail delivery failed|mail delivery failure|delivery failure|delivery failed|` +
		`delivery notification|delivery has failed|failure notice|returned mail|` +
		`returned to sender|non[- ]?delivery|nondeliverable|message not delivered|` +
		`mail system error|warning: could not send|warning: message delayed|delayed mail|` +
		`delivery delayed|message delayed|mail failure|delivery problem|` +
		`unzustellbar|nicht zustellbar|non remis|non recapitabile|onbestelbaar|` +
		`no se pudo entregar|ваше сообщение не доставлено|не доставлено|недоставленное)`)

	// autoReplySubjectRE matches vacation and auto-reply subjects in the
	// corpus languages: the keyword (after an optional "Re:" and an
	// optional "[tag]", as in RT's "[rt #123] AutoReply: ...") followed
	// by a colon or the end of the subject.
	autoReplySubjectRE = regexp.MustCompile(`(?i)^\s*(?:re:\s*)?(?:\[[^\]]{1,100}\]\s*)?(?:` +
		`automatic reply|automatic response|auto[- ]?reply|auto[- ]?response|autoresponder|auto|` +
		`out of (?:the )?office(?: auto[- ]?reply| reply)?|ooo|vacation(?: reply)?|on vacation|` +
		`away from (?:the )?office|abwesenheitsnotiz|automatische antwort|abwesend|` +
		`réponse automatique|reponse automatique|absence|risposta automatica|` +
		`respuesta automática|respuesta automatica|resposta automática|resposta automatica|` +
		`automatisch antwoord|afwezigheidsmelding|autosvar|automaattinen vastaus|` +
		`automatyczna odpowiedź|automatická odpověď|automatikus válasz|` +
		`автоматический ответ|автоответ|自动回复|自動回覆|自動回复|自動応答|自動返信|자동 응답)\s*(?:[:：]|$)`)

	// autoReplySuffixRE matches AOL-style "(Automatic Response)" endings.
	autoReplySuffixRE = regexp.MustCompile(`(?i)\((?:automatic response|auto[- ]?reply|auto[- ]?response|out of (?:the )?office|vacation)\)\s*$`)

	dsnStatusRE  = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)
	textStatusRE = regexp.MustCompile(`\b[45]\.\d{1,3}\.\d{1,3}\b`)

	qmailRecipientRE = regexp.MustCompile(`(?m)^<([^<>\s]+@[^<>\s]+)>:\s*$`)
	bareAddressRE    = regexp.MustCompile(`^<?([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+?)>?:?$`)
	failedLineRE     = regexp.MustCompile(`(?i)(?:following (?:address|recipient)|address(?:es)? failed|could not be delivered to|failed:\s*$|failed permanently)`)
	failedInlineRE   = regexp.MustCompile(`(?im)^delivery (?:to .*)?failed[^:\n]*:\s*<?([^\s<>@]+@[^\s<>@]+)>?\s*$`)
)

// classify sets Class, ClassReason and Bounce from the header and what the
// MIME walk saw, by the rules listed on Class, in that order.
func (p *parser) classify(h header) {
	s := p.s
	set := func(c Class, reason string) {
		s.Class, s.ClassReason = c, reason
	}
	defer func() {
		if s.Class == Bounce {
			s.Bounce = p.bounceInfo(h)
		}
	}()

	// 1.
	if v, ok := h.get("x-tracker-loop"); ok {
		set(Loop, "X-Tracker-Loop: "+truncate(unfoldText(toText(v)), 80))
		return
	}

	// 2.
	st := &p.st
	switch {
	case st.reportType("delivery-status") || st.reportType("global-delivery-status"):
		set(Bounce, "DSN (multipart/report delivery-status)")
		return
	case st.reportType("disposition-notification") || st.reportType("global-disposition-notification"):
		set(ReadReceipt, "MDN (multipart/report disposition-notification)")
		return
	case st.reportType("feedback-report"):
		set(FeedbackReport, "ARF (multipart/report feedback-report)")
		return
	case st.reportType("tlsrpt"):
		set(DMARCReport, "TLS report (multipart/report tlsrpt)")
		return
	case st.dsn:
		set(Bounce, "DSN (message/delivery-status part)")
		return
	case st.mdn:
		set(ReadReceipt, "MDN (message/disposition-notification part)")
		return
	case st.arf:
		set(FeedbackReport, "ARF (message/feedback-report part)")
		return
	case st.tlsrpt:
		set(DMARCReport, "TLS report (application/tlsrpt part)")
		return
	}

	subject := s.Subject
	fromAddr := strings.ToLower(s.From.Addr)
	fromName := strings.ToLower(s.From.Name)
	local := fromAddr
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}

	// 3.
	if st.archive {
		switch {
		case strings.HasPrefix(strings.ToLower(strings.TrimSpace(subject)), "report domain:"):
			set(DMARCReport, "DMARC aggregate report (Report Domain: subject)")
			return
		case strings.Contains(fromAddr, "dmarc"):
			set(DMARCReport, "DMARC aggregate report (from "+s.From.Addr+")")
			return
		}
	}

	// 4.
	autoSubmitted := ""
	if v, ok := h.get("auto-submitted"); ok {
		autoSubmitted = firstToken(v)
	}
	nullSender := p.nullSenderHint(h)
	bounceSubject := bounceSubjectRE.MatchString(subject)
	switch {
	case local == "mailer-daemon" || local == "mailer_daemon" || local == "mailerdaemon" || local == "mail-daemon" ||
		fromAddr == "" && strings.Contains(fromName, "mailer") && strings.Contains(fromName, "daemon"):
		set(Bounce, "From: MAILER-DAEMON")
		return
	case (local == "postmaster" || strings.Contains(fromName, "mail delivery") || strings.Contains(fromName, "postmaster")) && bounceSubject:
		set(Bounce, "From: postmaster or mail delivery system, bounce subject")
		return
	case bounceSubject && autoSubmitted != "" && autoSubmitted != "no":
		set(Bounce, "bounce subject with Auto-Submitted: "+autoSubmitted)
		return
	case bounceSubject && nullSender != "":
		set(Bounce, "bounce subject with "+nullSender)
		return
	case h.has("x-failed-recipients"):
		set(Bounce, "X-Failed-Recipients")
		return
	}

	// 5.
	if autoSubmitted != "" && autoSubmitted != "no" {
		set(AutoReply, "Auto-Submitted: "+autoSubmitted)
		return
	}
	for _, name := range []string{"x-autoreply", "x-autorespond", "x-autoresponse", "x-autoreply-from", "x-mail-autoreply"} {
		if v, ok := h.get(name); ok {
			switch firstToken(v) {
			case "no", "false", "0", "off":
				continue
			}
			set(AutoReply, canonicalName(name))
			return
		}
	}
	if v, ok := h.get("precedence"); ok {
		switch t := firstToken(v); t {
		case "bulk", "junk", "auto_reply", "auto-reply":
			set(AutoReply, "Precedence: "+t)
			return
		}
	}

	// 6.
	if autoReplySubjectRE.MatchString(subject) || autoReplySuffixRE.MatchString(subject) {
		set(AutoReply, "auto-reply subject")
		return
	}

	// 7.
	if nullSender != "" {
		set(Bounce, "null sender ("+nullSender+")")
		return
	}
	set(Normal, "")
}

// nullSenderHint returns a description of the null reverse-path the
// message itself shows (the Return-Path the delivering MTA wrote, an
// X-Envelope-From, an mbox From_ line), or "".
func (p *parser) nullSenderHint(h header) string {
	if v, ok := h.get("return-path"); ok && isNullPath(v) {
		return "Return-Path: <>"
	}
	if v, ok := h.get("x-envelope-from"); ok && isNullPath(v) {
		return "X-Envelope-From: <>"
	}
	if strings.EqualFold(p.mboxFrom, "MAILER-DAEMON") || p.mboxFrom == "<>" {
		return "mbox From_ line " + p.mboxFrom
	}
	return ""
}

func isNullPath(v string) bool {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '('); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v == "<>" || v == "< >"
}

// firstToken returns the lowercased first word of a structured value
// ("auto-generated (failure)" → "auto-generated").
func firstToken(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, " \t;(,"); i >= 0 {
		v = v[:i]
	}
	return v
}

func canonicalName(name string) string {
	parts := strings.Split(name, "-")
	for i, p := range parts {
		if p == "" {
			continue
		}
		if len(p) <= 1 {
			parts[i] = strings.ToUpper(p)
			continue
		}
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "-")
}

// parseDSN reads the fields of a message/delivery-status body (RFC 3464
// §2.2, §2.3): blocks of fields separated by blank lines, the first per
// message, each further one per recipient.
func parseDSN(data []byte) []dsnRecipient {
	data = []byte(normalizeNewlines(string(data)))
	var out []dsnRecipient
	noop := func(string) {}
	for _, block := range bytes.Split(data, []byte("\n\n")) {
		block = bytes.TrimLeft(block, "\n")
		if len(bytes.TrimSpace(block)) == 0 {
			continue
		}
		h, _ := readHeader(block, noop)
		addr := dsnAddress(h.value("final-recipient"))
		if addr == "" {
			addr = dsnAddress(h.value("original-recipient"))
		}
		if addr == "" {
			continue
		}
		r := dsnRecipient{addr: addr, action: firstToken(h.value("action"))}
		if m := dsnStatusRE.FindString(h.value("status")); m != "" {
			r.status = m
		} else if m := dsnStatusRE.FindString(h.value("diagnostic-code")); m != "" {
			r.status = m
		}
		out = append(out, r)
		if len(out) >= 1000 {
			break
		}
	}
	return out
}

// dsnAddress returns the address of "rfc822; user@example.org".
func dsnAddress(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[i+1:]
	}
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "<")
	v = strings.TrimSuffix(v, ">")
	return clean(unfoldText(toText(strings.TrimSpace(v))))
}

// bounceInfo summarises the recipients of a bounce: from the
// message/delivery-status parts when there are any, else from
// X-Failed-Recipients and the usual plain-text layouts (qmail, Exim,
// Gmail).
func (p *parser) bounceInfo(h header) *BounceInfo {
	bi := &BounceInfo{}
	seen := map[string]bool{}
	add := func(addr string) {
		k := strings.ToLower(addr)
		if addr == "" || seen[k] {
			return
		}
		seen[k] = true
		bi.Recipients = append(bi.Recipients, addr)
	}
	for _, r := range p.st.recipients {
		switch r.action {
		case "delivered", "relayed", "expanded":
			continue
		case "failed", "delayed":
		default:
			if r.status == "" || r.status[0] == '2' {
				continue
			}
		}
		add(r.addr)
		if bi.Status == "" {
			bi.Status = r.status
		}
		if strings.HasPrefix(r.status, "5") || r.status == "" && r.action == "failed" {
			bi.Hard = true
		}
	}
	if len(p.st.recipients) > 0 {
		return bi
	}
	// No report: read the text.
	text := p.s.Text
	if len(text) > 16<<10 {
		text = text[:16<<10]
	}
	// Stop at the returned message, whose headers would mislead.
	for _, marker := range []string{
		"--- Below this line is a copy of the message", "------ This is a copy of the message",
		"----- Original message -----", "Original message follows", "----- Original Message -----",
		"------ This is a copy of your message",
	} {
		if i := strings.Index(text, marker); i >= 0 {
			text = text[:i]
		}
	}
	for _, v := range h.values("x-failed-recipients") {
		for _, a := range strings.Split(v, ",") {
			add(dsnAddress(a))
		}
	}
	for _, m := range qmailRecipientRE.FindAllStringSubmatch(text, 100) {
		add(m[1])
	}
	for _, m := range failedInlineRE.FindAllStringSubmatch(text, 100) {
		add(m[1])
	}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !failedLineRE.MatchString(lines[i]) {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		for ; j < len(lines); j++ {
			m := bareAddressRE.FindStringSubmatch(strings.TrimSpace(lines[j]))
			if m == nil {
				break
			}
			add(m[1])
		}
	}
	if m := textStatusRE.FindString(text); m != "" {
		bi.Status = m
	}
	lower := strings.ToLower(text)
	bi.Hard = strings.HasPrefix(bi.Status, "5") ||
		bi.Status == "" && (strings.Contains(lower, "permanent") || strings.Contains(lower, "user unknown"))
	return bi
}
