package auth

import (
	"context"
	"net"
	"time"
)

// Resolver is the DNS that SPF, DKIM and DMARC checks ask: the seam
// through which tests give fake zones. *net.Resolver satisfies it (and it
// is blitiri.com.ar/go/spf's DNSResolver). A name that does not exist is
// a *net.DNSError with IsNotFound set; a failure worth retrying is a
// *net.DNSError with IsTemporary or IsTimeout set.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// NewResolver returns the resolver of mailgw.dns_server: "" is the
// system's resolver, a host:port is that DNS server alone, asked over
// UDP (and TCP when an answer is truncated) by Go's own resolver.
func NewResolver(server string) Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: 5 * time.Second}
			return d.DialContext(ctx, network, server)
		},
	}
}
