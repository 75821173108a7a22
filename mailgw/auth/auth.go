// Package auth decides whether a mail's From domain is authenticated
// (DESIGN §5 "Who wrote it", issue 8): SPF (RFC 7208), DKIM (RFC 6376)
// and DMARC (RFC 7489) checked by trackerd itself for mail that reaches
// its SMTP listener, with the verdict written as an Authentication-Results
// header (RFC 8601); and the Authentication-Results headers of trusted
// hosts read back for mail that comes through a poller or an MTA's pipe.
//
// A From domain is authenticated when DMARC passes; or, when the domain
// publishes no DMARC record, when SPF or a DKIM signature passes for a
// domain aligned with it in relaxed mode (the same organisational domain,
// found through the public suffix list).
package auth

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Result is one method's result (RFC 8601 §2.7).
type Result string

// The results trackerd writes and reads. SPF's softfail and neutral are
// kept as they are; they are not a pass.
const (
	None      Result = "none"
	Pass      Result = "pass"
	Fail      Result = "fail"
	SoftFail  Result = "softfail"
	Neutral   Result = "neutral"
	Policy    Result = "policy"
	TempError Result = "temperror"
	PermError Result = "permerror"
)

// Signature is the result of one DKIM signature.
type Signature struct {
	Result   Result
	Domain   string // d=, the signing domain (header.d)
	Selector string // s= (header.s), when a header read reports it
}

// Verdict is what is known of a mail's authentication: checked by
// trackerd (Check) or read from trusted Authentication-Results headers
// (Read, ReadOwn).
type Verdict struct {
	// AuthservID is who judged: trackerd's own authserv-id, or the
	// trusted host whose header was read. "" means nobody did.
	AuthservID string
	// Checked is false when no check was made (the header says "none").
	Checked bool

	SPF       Result // "" when not reported
	SPFDomain string // the domain SPF checked (smtp.mailfrom, or smtp.helo for a null sender)
	DKIM      []Signature
	DMARC     Result // "" when not reported
	// DMARCFrom is the From domain DMARC was evaluated for (header.from);
	// DMARCPolicy the domain's p= (or sp=) when a record was found.
	DMARCFrom   string
	DMARCPolicy string
}

// Authenticated reports whether fromDomain, the domain of the mail's From
// address, is authenticated by v: DMARC passed for it; or no DMARC result
// for it exists (none, or not reported) and SPF or a DKIM signature
// passed for a domain aligned with it (relaxed alignment). A DMARC result
// reported for another domain (header.from) does not count.
func (v *Verdict) Authenticated(fromDomain string) bool {
	fromDomain = Domain(fromDomain)
	if fromDomain == "" || !v.Checked {
		return false
	}
	dmarc := v.DMARC
	if v.DMARCFrom != "" && Domain(v.DMARCFrom) != fromDomain {
		dmarc = ""
	}
	switch dmarc {
	case Pass:
		return true
	case None, "":
	default:
		return false
	}
	if v.SPF == Pass && Aligned(v.SPFDomain, fromDomain, false) {
		return true
	}
	for _, s := range v.DKIM {
		if s.Result == Pass && Aligned(s.Domain, fromDomain, false) {
			return true
		}
	}
	return false
}

// Why says, for a sender, why fromDomain is not authenticated by v.
func (v *Verdict) Why(fromDomain string) string {
	fromDomain = Domain(fromDomain)
	switch {
	case fromDomain == "":
		return "the message has no From address with a domain to authenticate"
	case !v.Checked:
		return "nothing vouches for the sender: no Authentication-Results header of a host this tracker trusts"
	}
	var parts []string
	if v.DMARC != "" {
		p := "DMARC " + string(v.DMARC)
		if v.DMARCPolicy != "" {
			p += " (policy " + v.DMARCPolicy + ")"
		}
		parts = append(parts, p)
	}
	if v.SPF != "" {
		p := "SPF " + string(v.SPF)
		if v.SPFDomain != "" {
			p += " for " + v.SPFDomain
		}
		parts = append(parts, p)
	}
	if len(v.DKIM) == 0 {
		parts = append(parts, "no DKIM signature")
	}
	for _, s := range v.DKIM {
		parts = append(parts, "DKIM "+string(s.Result)+" for "+s.Domain)
	}
	return "the From domain " + fromDomain + " is not authenticated (" + strings.Join(parts, ", ") +
		"): DMARC must pass, or SPF or DKIM must pass for " + fromDomain + " or its organisational domain"
}

// Domain is d in lower case without a trailing dot; an address gives its
// domain.
func Domain(d string) string {
	if i := strings.LastIndexByte(d, '@'); i >= 0 {
		d = d[i+1:]
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// OrgDomain is the organisational domain of d (RFC 7489 §3.2): the public
// suffix plus one label, by the public suffix list. A name that is itself
// a public suffix, or not a domain at all, is its own.
func OrgDomain(d string) string {
	d = Domain(d)
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// Aligned reports whether domain d is aligned with the From domain from
// (RFC 7489 §3.1): equal in strict mode, the same organisational domain
// in relaxed mode.
func Aligned(d, from string, strict bool) bool {
	d, from = Domain(d), Domain(from)
	if d == "" || from == "" {
		return false
	}
	if d == from {
		return true
	}
	return !strict && OrgDomain(d) == OrgDomain(from)
}
