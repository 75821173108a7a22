// Package dnstest is a fake DNS for tests of package auth and of the
// trackerd binary: a Zone answers in memory as an auth.Resolver, or over
// UDP as a DNS server (Serve) that mailgw.dns_server can name.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// Zone is a set of records, keyed by name (any case, with or without the
// final dot). A name with no record of any kind does not exist
// (NXDOMAIN); a name in Fail answers SERVFAIL, a temporary failure.
type Zone struct {
	TXT  map[string][]string
	IP   map[string][]net.IP // A and AAAA
	MX   map[string][]string // exchange host names, in preference order
	Fail map[string]bool
}

func key(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func (z *Zone) lookup(name string) (txt []string, ips []net.IP, mx []string, exists, fail bool) {
	k := key(name)
	for n, v := range z.TXT {
		if key(n) == k {
			txt, exists = v, true
		}
	}
	for n, v := range z.IP {
		if key(n) == k {
			ips, exists = v, true
		}
	}
	for n, v := range z.MX {
		if key(n) == k {
			mx, exists = v, true
		}
	}
	for n, v := range z.Fail {
		if key(n) == k && v {
			fail = true
		}
	}
	return
}

func (z *Zone) err(name string, exists, fail bool) error {
	switch {
	case fail:
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	case !exists:
		return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true} // no record of the type asked
}

// LookupTXT answers from z.TXT.
func (z *Zone) LookupTXT(_ context.Context, name string) ([]string, error) {
	txt, _, _, exists, fail := z.lookup(name)
	if fail || len(txt) == 0 {
		return nil, z.err(name, exists, fail)
	}
	return append([]string(nil), txt...), nil
}

// LookupIPAddr answers from z.IP.
func (z *Zone) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	_, ips, _, exists, fail := z.lookup(host)
	if fail || len(ips) == 0 {
		return nil, z.err(host, exists, fail)
	}
	out := make([]net.IPAddr, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: ip})
	}
	return out, nil
}

// LookupMX answers from z.MX.
func (z *Zone) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	_, _, mx, exists, fail := z.lookup(name)
	if fail || len(mx) == 0 {
		return nil, z.err(name, exists, fail)
	}
	out := make([]*net.MX, 0, len(mx))
	for i, h := range mx {
		out = append(out, &net.MX{Host: key(h) + ".", Pref: uint16(10 * (i + 1))})
	}
	return out, nil
}

// LookupAddr: the fake has no PTR records.
func (z *Zone) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

// Server is a zone served over UDP on 127.0.0.1.
type Server struct {
	Addr string // host:port, for mailgw.dns_server
	pc   net.PacketConn
	wg   sync.WaitGroup
}

// Serve serves z over UDP on a free port of 127.0.0.1 until Close. z must
// not change while it is served.
func Serve(z *Zone) (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: pc.LocalAddr().String(), pc: pc}
	s.wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := z.answer(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	})
	return s, nil
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

// answer builds the response to one query, or nil for garbage.
func (z *Zone) answer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	txt, ips, mx, exists, fail := z.lookup(q.Name.String())
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	switch {
	case fail:
		rh.RCode = dnsmessage.RCodeServerFailure
	case !exists:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	rrh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	if !fail && exists {
		switch q.Type {
		case dnsmessage.TypeTXT:
			for _, t := range txt {
				if b.TXTResource(rrh, dnsmessage.TXTResource{TXT: chunks(t)}) != nil {
					return nil
				}
			}
		case dnsmessage.TypeA, dnsmessage.TypeAAAA:
			for _, ip := range ips {
				if ip4 := ip.To4(); ip4 != nil && q.Type == dnsmessage.TypeA {
					if b.AResource(rrh, dnsmessage.AResource{A: [4]byte(ip4)}) != nil {
						return nil
					}
				} else if ip4 == nil && q.Type == dnsmessage.TypeAAAA {
					if b.AAAAResource(rrh, dnsmessage.AAAAResource{AAAA: [16]byte(ip.To16())}) != nil {
						return nil
					}
				}
			}
		case dnsmessage.TypeMX:
			for i, host := range mx {
				n, err := dnsmessage.NewName(key(host) + ".")
				if err != nil {
					return nil
				}
				if b.MXResource(rrh, dnsmessage.MXResource{Pref: uint16(10 * (i + 1)), MX: n}) != nil {
					return nil
				}
			}
		}
	}
	resp, err := b.Finish()
	if err != nil {
		return nil
	}
	return resp
}

// chunks splits a TXT record into the 255-byte strings DNS carries.
func chunks(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
