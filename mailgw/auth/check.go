package auth

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
)

// Checker checks mail as trackerd's SMTP listener receives it. It is
// safe for concurrent use.
type Checker struct {
	r  Resolver
	id string
	// Timeout bounds all the DNS work of one Check; a lookup still
	// running then is a temperror.
	Timeout time.Duration
}

// NewChecker returns a checker asking r, that signs its verdicts with
// authservID.
func NewChecker(r Resolver, authservID string) *Checker {
	return &Checker{r: r, id: authservID, Timeout: 20 * time.Second}
}

// AuthservID is the checker's authserv-id.
func (c *Checker) AuthservID() string { return c.id }

// Message is what a check looks at: the SMTP transaction and the mail.
type Message struct {
	IP       net.IP // the client's address
	Helo     string // EHLO/HELO name
	MailFrom string // MAIL FROM; "" for the null sender
	From     string // the From header's address (its domain is judged)
	Raw      []byte // the mail as received
}

// maxSignatures is how many DKIM signatures are verified per mail; the
// rest are ignored (each costs a DNS lookup and an RSA verification).
const maxSignatures = 5

// Check runs SPF for the client IP and envelope sender, verifies every
// DKIM signature (up to maxSignatures), and evaluates DMARC for the From
// domain with the record's alignment modes. DNS failures become
// temperror results; Check itself never fails.
func (c *Checker) Check(ctx context.Context, m Message) Verdict {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	v := Verdict{AuthservID: c.id, Checked: true}

	// SPF (RFC 7208 §2.4: a null sender is checked as postmaster@HELO).
	v.SPFDomain = Domain(m.MailFrom)
	if !strings.Contains(m.MailFrom, "@") {
		v.SPFDomain = Domain(m.Helo)
	}
	res, _ := spf.CheckHostWithSender(m.IP, m.Helo, m.MailFrom, spf.WithResolver(c.r), spf.WithContext(ctx))
	v.SPF = Result(res)
	if v.SPF == "" {
		v.SPF = None
	}

	// DKIM: one result per signature.
	lookupTXT := func(name string) ([]string, error) { return c.r.LookupTXT(ctx, name) }
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Raw), &dkim.VerifyOptions{LookupTXT: lookupTXT, MaxVerifications: maxSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		verifs = nil // a header that cannot be read: no signature counts
	}
	for _, vf := range verifs {
		s := Signature{Result: Pass, Domain: Domain(vf.Domain)}
		switch {
		case vf.Err == nil:
		case dkim.IsTempFail(vf.Err):
			s.Result = TempError
		case dkim.IsPermFail(vf.Err):
			s.Result = PermError
		default:
			s.Result = Fail
		}
		v.DKIM = append(v.DKIM, s)
	}

	// DMARC (RFC 7489 §6.6): the From domain's record, else its
	// organisational domain's.
	from := Domain(m.From)
	if from == "" || !strings.Contains(m.From, "@") {
		v.DMARC = None
		return v
	}
	v.DMARCFrom = from
	rec, policy, err := c.dmarcRecord(from, lookupTXT)
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		v.DMARC = None
		return v
	case dmarc.IsTempFail(err):
		v.DMARC = TempError
		return v
	case err != nil:
		v.DMARC = PermError
		return v
	}
	v.DMARCPolicy = policy
	v.DMARC = Fail
	if v.SPF == Pass && Aligned(v.SPFDomain, from, rec.SPFAlignment == dmarc.AlignmentStrict) {
		v.DMARC = Pass
	}
	for _, s := range v.DKIM {
		if s.Result == Pass && Aligned(s.Domain, from, rec.DKIMAlignment == dmarc.AlignmentStrict) {
			v.DMARC = Pass
		}
	}
	return v
}

// dmarcRecord finds the DMARC record for the From domain and the policy
// that applies to it: p=, or sp= when the record is the organisational
// domain's and the From domain is below it.
func (c *Checker) dmarcRecord(from string, lookupTXT func(string) ([]string, error)) (*dmarc.Record, string, error) {
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) {
		txts, err := lookupTXT(name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && (dnsErr.IsTemporary || dnsErr.IsTimeout) {
			// go-msgauth's dmarc tells a temporary failure by the
			// deprecated net.Error Temporary method.
			return nil, tempError{dnsErr}
		}
		return txts, err
	}}
	rec, err := dmarc.LookupWithOptions(from, opts)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if org := OrgDomain(from); org != from {
			rec, err = dmarc.LookupWithOptions(org, opts)
			if err == nil && rec.SubdomainPolicy != "" {
				return rec, string(rec.SubdomainPolicy), nil
			}
		}
	}
	if err != nil {
		return nil, "", err
	}
	return rec, string(rec.Policy), nil
}

// tempError is a DNS error that reports itself temporary through
// net.Error, as go-msgauth's dmarc asks.
type tempError struct{ err *net.DNSError }

func (e tempError) Error() string   { return e.err.Error() }
func (e tempError) Timeout() bool   { return e.err.Timeout() }
func (e tempError) Temporary() bool { return true }
