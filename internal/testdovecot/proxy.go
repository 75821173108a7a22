package testdovecot

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards a loopback port to a server, line by line from the
// client, and can stop a connection at a chosen command: a test puts it
// between a poller and Dovecot to catch the poller between its commit and
// its after-action (UID STORE, UID MOVE, EXPUNGE, DELE), then kills the
// poller or cuts the connection there.
type Proxy struct {
	// Addr is the proxy's host:port.
	Addr string
	// Held receives each client line that matched Hold, when the proxy
	// has stopped that connection on it.
	Held chan string

	target string
	ln     net.Listener
	mu     sync.Mutex
	hold   func(line string) bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target, closed when tb ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), Held: make(chan string, 16), target: target, ln: ln}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	return p
}

// Hold arms the proxy: a client line for which match returns true is not
// forwarded; the connection stops there (nothing more is forwarded either
// way) and the line is sent on Held. nil disarms it for new lines.
func (p *Proxy) Hold(match func(line string) bool) {
	p.mu.Lock()
	p.hold = match
	p.mu.Unlock()
}

// CutAll closes every connection through the proxy, as a network failure
// would.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.CutAll()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(c, s)
			c.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer s.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if line != "" {
					p.mu.Lock()
					hold := p.hold
					p.mu.Unlock()
					if hold != nil && hold(line) {
						p.Held <- line
						io.Copy(io.Discard, r) // until the client goes
						return
					}
					if _, werr := io.WriteString(s, line); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
