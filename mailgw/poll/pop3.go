package poll

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"

	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/mailgw/pop3"
)

// maxPerSession bounds the messages one POP3 session takes before it
// QUITs (which makes its deletions real) and a new one starts: a long
// session risks the server's autologout timer (RFC 1939 §3: at least
// ten minutes) and leaves every deletion pending until its end.
const maxPerSession = 500

// passPOP3 runs POP3 sessions until one finds nothing more to take.
func (p *Poller) passPOP3(ctx context.Context) (Stats, error) {
	var st Stats
	for {
		more, err := p.sessionPOP3(ctx, &st)
		if err != nil || !more {
			return st, err
		}
		if err := ctx.Err(); err != nil {
			return st, context.Cause(ctx)
		}
	}
}

// sessionPOP3 is one POP3 session: list, file new mail in batches, DELE
// each batch after its commit, QUIT. A message whose UIDL is recorded was
// filed in an earlier session whose deletions did not happen (a crash or
// a broken connection before QUIT): it is deleted without being fetched.
// It reports whether messages were left for another session.
func (p *Poller) sessionPOP3(ctx context.Context, st *Stats) (more bool, err error) {
	mb := p.mb
	key := mb.Key()
	work := context.WithoutCancel(ctx)
	c, err := p.dialPOP3(ctx)
	if err != nil {
		return false, err
	}
	quit := false
	defer func() {
		if !quit {
			c.Close() // no QUIT: the server deletes nothing
		}
	}()
	// A shutdown during the session closes the connection; deletions
	// already sent are then simply not made (the next pass makes them).
	stopCancel := context.AfterFunc(ctx, func() { c.Close() })
	defer stopCancel()

	uidl, err := c.UIDL()
	if err != nil {
		var pe *pop3.Error
		if errors.As(err, &pe) {
			return false, fmt.Errorf("UIDL: the server cannot name its messages, so they cannot be polled exactly once: %w", err)
		}
		return false, describe("UIDL", err)
	}
	list, err := c.List()
	if err != nil {
		return false, describe("LIST", err)
	}
	sizes := make(map[int]int64, len(list))
	for _, m := range list {
		sizes[m.Num] = m.Size
	}
	keep := make([]string, len(uidl))
	for i, m := range uidl {
		keep[i] = m.UID
	}
	if err := p.st.ForgetUIDLs(work, key, keep); err != nil {
		return false, err
	}

	var (
		batch    []mailgw.Mail
		batchIDs []pop3.Message
		bytes    int64
		taken    int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rs, err := p.gw.DeliverBatch(work, batch)
		if err != nil {
			return err // nothing stored; nothing deleted
		}
		st.add(rs)
		for _, m := range batchIDs {
			if err := p.st.AddUIDL(work, key, m.UID); err != nil {
				return err
			}
		}
		for _, m := range batchIDs {
			if err := c.Dele(m.Num); err != nil {
				return describe(fmt.Sprintf("DELE of filed mail %d (it stays on the server and is not filed again)", m.Num), err)
			}
			st.Acknowledged++
		}
		batch, batchIDs, bytes = nil, nil, 0
		return nil
	}
	for _, m := range uidl {
		if taken == maxPerSession {
			more = true
			break
		}
		if err := ctx.Err(); err != nil {
			break
		}
		seen, err := p.st.SeenUIDL(work, key, m.UID)
		if err != nil {
			return false, err
		}
		if seen {
			if err := c.Dele(m.Num); err != nil {
				return false, describe(fmt.Sprintf("DELE of mail %d filed before", m.Num), err)
			}
			st.Acknowledged++
			continue
		}
		size, listed := sizes[m.Num]
		if listed && size > p.o.MaxMessageBytes {
			st.TooLarge++
			p.log.Warn("mail larger than smtp.max_message_bytes left on the server", "uidl", m.UID, "size", size, "limit", p.o.MaxMessageBytes)
			continue
		}
		if len(batch) > 0 && (len(batch) == p.o.BatchSize || bytes+size > p.o.BatchBytes) {
			if err := flush(); err != nil {
				return false, err
			}
		}
		raw, err := c.Retr(m.Num, p.o.MaxMessageBytes)
		if errors.Is(err, pop3.ErrTooLarge) {
			st.TooLarge++
			p.log.Warn("mail larger than smtp.max_message_bytes left on the server", "uidl", m.UID, "limit", p.o.MaxMessageBytes)
			continue
		}
		if err != nil {
			return false, describe(fmt.Sprintf("RETR %d", m.Num), err)
		}
		batch = append(batch, mailgw.Mail{Raw: raw, Source: mb.Source()})
		batchIDs = append(batchIDs, m)
		bytes += int64(len(raw))
		taken++
	}
	if err := flush(); err != nil {
		return false, err
	}
	quit = true
	if err := c.Quit(); err != nil {
		// The mail is filed; without a successful QUIT the server keeps
		// it, and the next pass deletes it by its recorded UIDL.
		return false, describe("QUIT (deletions not confirmed)", err)
	}
	if err := ctx.Err(); err != nil {
		return false, context.Cause(ctx)
	}
	return more, nil
}

// dialPOP3 connects (with TLS or STLS as the URL says) and logs in.
func (p *Poller) dialPOP3(ctx context.Context) (*pop3.Client, error) {
	mb := p.mb
	o := &pop3.Options{TLSConfig: p.tlsConfig(), Timeout: p.o.Timeout}
	var c *pop3.Client
	var err error
	if mb.Security == "tls" {
		c, err = pop3.DialTLS(ctx, mb.Addr, o)
	} else {
		c, err = pop3.Dial(ctx, mb.Addr, o)
	}
	if err != nil {
		return nil, describe("connect to "+mb.Addr, err)
	}
	if err := p.loginPOP3(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (p *Poller) loginPOP3(c *pop3.Client) error {
	mb := p.mb
	caps, err := c.Capa()
	if err != nil {
		return describe("CAPA", err)
	}
	if mb.Security == "starttls" {
		if !caps.Has("STLS") {
			return fmt.Errorf("the server at %s does not offer STLS, which the pop3+starttls URL requires", mb.Addr)
		}
		if err := c.StartTLS(); err != nil {
			return describe("STLS with "+mb.Addr, err)
		}
		// RFC 2595 §4: capabilities may change after STLS.
		if caps, err = c.Capa(); err != nil {
			return describe("CAPA", err)
		}
	}
	switch {
	case mb.useToken():
		tok, err := mb.token()
		if err != nil {
			return err
		}
		x := &xoauth2{user: mb.User, token: tok}
		if err := c.Auth(x); err != nil {
			return describe("log in as "+mb.User+" with XOAUTH2", x.explain(err))
		}
	case mb.APOP:
		if err := c.APOP(mb.User, mb.Password); err != nil {
			return describe("log in as "+mb.User+" with APOP", err)
		}
	case !caps.Has("USER") && caps.SASL(sasl.Plain):
		if err := c.Auth(sasl.NewPlainClient("", mb.User, mb.Password)); err != nil {
			return describe("log in as "+mb.User, err)
		}
	default:
		if err := c.Login(mb.User, mb.Password); err != nil {
			return describe("log in as "+mb.User, err)
		}
	}
	return nil
}
