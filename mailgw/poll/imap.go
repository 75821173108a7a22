package poll

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/trackerd/trackerd/mailgw"
	"github.com/trackerd/trackerd/store"
)

// imapSession is one logged-in IMAP connection with the mailbox selected.
type imapSession struct {
	p    *Poller
	conn net.Conn
	c    *imapclient.Client
	// uidValidity and uidNext are from the SELECT.
	uidValidity uint32
	uidNext     imap.UID
	// notify receives a value when the server announces new mail (an
	// EXISTS response), during IDLE or any other command.
	notify chan struct{}
}

// passIMAPOnce connects, makes one pass and logs out.
func (p *Poller) passIMAPOnce(ctx context.Context) (Stats, error) {
	s, err := p.dialIMAP(ctx)
	if err != nil {
		return Stats{}, err
	}
	defer s.close()
	return s.pass(ctx)
}

// dialIMAP connects, logs in and selects the mailbox.
func (p *Poller) dialIMAP(ctx context.Context) (*imapSession, error) {
	mb := p.mb
	s := &imapSession{p: p, notify: make(chan struct{}, 1)}
	d := &net.Dialer{Timeout: p.o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", mb.Addr)
	if err != nil {
		return nil, describe("connect to "+mb.Addr, err)
	}
	// Until the mailbox is selected, every step is bounded by one guard.
	stop := guard(ctx, p.o.Timeout, func() { conn.Close() })
	defer stop()
	if mb.Security == "tls" {
		tc := tls.Client(conn, p.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, describe("TLS with "+mb.Addr, err)
		}
		conn = tc
	}
	s.conn = conn
	opts := &imapclient.Options{
		TLSConfig: p.tlsConfig(),
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.notify <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	if mb.Security == "starttls" {
		s.c, err = imapclient.NewStartTLS(conn, opts)
		if err != nil {
			conn.Close()
			return nil, describe("STARTTLS with "+mb.Addr, err)
		}
	} else {
		s.c = imapclient.New(conn, opts)
		if err := s.c.WaitGreeting(); err != nil {
			s.c.Close()
			return nil, describe("greeting of "+mb.Addr, err)
		}
	}
	if err := s.login(); err != nil {
		s.c.Close()
		return nil, err
	}
	sel, err := s.c.Select(mb.Folder, nil).Wait()
	if err != nil {
		s.c.Close()
		return nil, describe("select "+mb.Folder, err)
	}
	if sel.UIDValidity == 0 {
		s.c.Close()
		return nil, fmt.Errorf("select %s: the server sent no UIDVALIDITY", mb.Folder)
	}
	s.uidValidity, s.uidNext = sel.UIDValidity, sel.UIDNext
	return s, nil
}

// login authenticates: XOAUTH2 with a token; else AUTHENTICATE PLAIN
// when the server offers it, LOGIN otherwise.
func (s *imapSession) login() error {
	mb := s.p.mb
	if mb.useToken() {
		tok, err := mb.token()
		if err != nil {
			return err
		}
		x := &xoauth2{user: mb.User, token: tok}
		if err := s.c.Authenticate(x); err != nil {
			return describe("log in as "+mb.User+" with XOAUTH2", x.explain(err))
		}
		return nil
	}
	caps := s.c.Caps()
	if slices.ContainsFunc(caps.AuthMechanisms(), func(m string) bool { return strings.EqualFold(m, sasl.Plain) }) {
		if err := s.c.Authenticate(sasl.NewPlainClient("", mb.User, mb.Password)); err != nil {
			return describe("log in as "+mb.User, err)
		}
		return nil
	}
	if caps.Has(imap.CapLoginDisabled) {
		return fmt.Errorf("log in as %s: the server refuses LOGIN on this connection and offers no AUTH=PLAIN (use imaps:// or imap+starttls://)", mb.User)
	}
	if err := s.c.Login(mb.User, mb.Password).Wait(); err != nil {
		return describe("log in as "+mb.User, err)
	}
	return nil
}

// close logs out (bounded) and closes the connection.
func (s *imapSession) close() {
	stop := guard(context.Background(), 5*time.Second, func() { s.conn.Close() })
	_ = s.c.Logout().Wait()
	stop()
	s.c.Close()
}

// do runs one exchange under a guard: cancellable by ctx
// (context.Background() for acknowledgements) and bounded by d.
func (s *imapSession) do(ctx context.Context, d time.Duration, f func() error) error {
	stop := guard(ctx, d, func() { s.conn.Close() })
	defer stop()
	return f()
}

// pass files every new mail of the selected mailbox: see Poller.Pass.
func (s *imapSession) pass(ctx context.Context) (Stats, error) {
	var st Stats
	p, mb := s.p, s.p.mb
	key := mb.Key()
	work := context.WithoutCancel(ctx) // a batch in flight is finished
	cur, err := p.st.PollCursor(work, key)
	if err != nil {
		return st, err
	}
	last := imap.UID(cur.LastUID)
	fresh := cur.UIDValidity != s.uidValidity
	if fresh {
		if cur.UIDValidity != 0 {
			p.log.Warn("UIDVALIDITY changed: the server renumbered the mailbox; looking at every mail again (mail filed before is recognised and not filed twice)",
				"old", cur.UIDValidity, "new", s.uidValidity)
		}
		last = 0
	}
	criteria := &imap.SearchCriteria{}
	if fresh && mb.After == "flag" {
		// Without a cursor, mail already \Seen was handled before (or
		// read by a person before trackerd was pointed at the mailbox).
		criteria.NotFlag = []imap.Flag{imap.FlagSeen}
	} else {
		criteria.UID = []imap.UIDSet{{imap.UIDRange{Start: last + 1, Stop: 0}}}
	}
	var uids []imap.UID
	err = s.do(ctx, p.o.Timeout, func() error {
		data, err := s.c.UIDSearch(criteria, nil).Wait()
		if err != nil {
			return err
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil {
		return st, describe("search "+mb.Folder, err)
	}
	// "N:*" matches the last message even when its UID is below N.
	uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return u <= last })
	slices.Sort(uids)
	sizes, err := s.sizes(ctx, uids)
	if err != nil {
		return st, err
	}
	for len(uids) > 0 {
		if err := ctx.Err(); err != nil {
			return st, context.Cause(ctx)
		}
		// One batch: up to BatchSize mails and BatchBytes, in UID order;
		// mail over the size limit is skipped (left in the mailbox) but
		// counts as handled for the cursor.
		var batch []imap.UID
		var bytes int64
		n := 0
		for ; n < len(uids) && len(batch) < p.o.BatchSize; n++ {
			u := uids[n]
			size, ok := sizes[u]
			if !ok {
				continue // expunged meanwhile by someone else
			}
			if size > p.o.MaxMessageBytes {
				st.TooLarge++
				p.log.Warn("mail larger than smtp.max_message_bytes left in the mailbox", "uid", u, "size", size, "limit", p.o.MaxMessageBytes)
				continue
			}
			if len(batch) > 0 && bytes+size > p.o.BatchBytes {
				break
			}
			batch = append(batch, u)
			bytes += size
		}
		high := uids[n-1]
		uids = uids[n:]
		if err := s.batch(ctx, work, batch, &st); err != nil {
			return st, err
		}
		if err := p.st.SetPollCursor(work, store.Cursor{Mailbox: key, UIDValidity: s.uidValidity, LastUID: uint32(high)}); err != nil {
			return st, err
		}
		last = high
	}
	// Everything below UIDNEXT existed at SELECT and was searched for
	// since: the cursor may move past it even when nothing was new.
	high := last
	if s.uidNext > 0 {
		high = max(high, s.uidNext-1)
	}
	if fresh || high != last {
		if err := p.st.SetPollCursor(work, store.Cursor{Mailbox: key, UIDValidity: s.uidValidity, LastUID: uint32(high)}); err != nil {
			return st, err
		}
	}
	return st, nil
}

// sizes returns the RFC822.SIZE of each of uids still in the mailbox.
func (s *imapSession) sizes(ctx context.Context, uids []imap.UID) (map[imap.UID]int64, error) {
	sizes := make(map[imap.UID]int64, len(uids))
	for chunk := range slices.Chunk(uids, 1000) {
		var set imap.UIDSet
		set.AddNum(chunk...)
		err := s.do(ctx, s.p.o.Timeout, func() error {
			msgs, err := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if m.UID != 0 {
					sizes[m.UID] = m.RFC822Size
				}
			}
			return nil
		})
		if err != nil {
			return nil, describe("fetch sizes", err)
		}
	}
	return sizes, nil
}

// batch fetches uids, files them in one transaction and acknowledges
// them. Nothing is acknowledged unless the transaction committed.
func (s *imapSession) batch(ctx, work context.Context, uids []imap.UID, st *Stats) error {
	if len(uids) == 0 {
		return nil
	}
	p := s.p
	bodies, err := s.fetch(ctx, uids)
	if err != nil {
		return err
	}
	var mails []mailgw.Mail
	var got []imap.UID
	for _, u := range uids {
		if b, ok := bodies[u]; ok {
			mails = append(mails, mailgw.Mail{Raw: b, Source: p.mb.Source()})
			got = append(got, u)
		}
	}
	if len(mails) == 0 {
		return nil
	}
	rs, err := p.gw.DeliverBatch(work, mails)
	if err != nil {
		return err // nothing stored: the mail stays for the next pass
	}
	st.add(rs)
	if err := s.acknowledge(got); err != nil {
		// Filed but not acknowledged: the cursor stays, the next pass
		// fetches them again, the store knows them, and the action is
		// tried again.
		return describe(fmt.Sprintf("after-action %q on %d filed mails (they stay in the mailbox and are not filed again)", p.mb.After, len(got)), err)
	}
	st.Acknowledged += len(got)
	return nil
}

// fetch returns the bodies of uids (BODY.PEEK[], so no \Seen is set by
// fetching). A body over the size limit is left out.
func (s *imapSession) fetch(ctx context.Context, uids []imap.UID) (map[imap.UID][]byte, error) {
	limit := s.p.o.MaxMessageBytes
	bodies := make(map[imap.UID][]byte, len(uids))
	var set imap.UIDSet
	set.AddNum(uids...)
	err := s.do(ctx, 10*s.p.o.Timeout, func() error {
		cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		var readErr error
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			var uid imap.UID
			var body []byte
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					b, err := io.ReadAll(io.LimitReader(it.Literal, limit+1))
					if err != nil {
						readErr = err
						continue
					}
					if int64(len(b)) > limit {
						s.p.log.Warn("mail larger than smtp.max_message_bytes left in the mailbox", "uid", uid, "limit", limit)
						continue
					}
					body = b
				}
			}
			if uid != 0 && body != nil {
				bodies[uid] = body
			}
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		return readErr
	})
	if err != nil {
		return nil, describe("fetch mail", err)
	}
	return bodies, nil
}

// acknowledge applies the after-action to uids. It is not cancelled by
// shutdown: the mails are filed, and finishing takes one exchange.
func (s *imapSession) acknowledge(uids []imap.UID) error {
	var set imap.UIDSet
	set.AddNum(uids...)
	mb := s.p.mb
	return s.do(context.Background(), s.p.o.Timeout, func() error {
		switch mb.After {
		case "flag":
			return s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
		case "move":
			caps := s.c.Caps()
			if !caps.Has(imap.CapMove) && !caps.Has(imap.CapIMAP4rev2) {
				// Not go-imap's own fallback: it pipelines COPY, STORE
				// \Deleted and EXPUNGE, so a failed COPY (say, the
				// folder missing) would still delete the mail.
				if err := s.retryCreate(func() error { _, err := s.c.Copy(set, mb.MoveTo).Wait(); return err }); err != nil {
					return err
				}
				return s.deleteUIDs(set)
			}
			return s.retryCreate(func() error { _, err := s.c.Move(set, mb.MoveTo).Wait(); return err })
		default: // delete
			return s.deleteUIDs(set)
		}
	})
}

// retryCreate runs a COPY or MOVE, and when the server answers TRYCREATE
// (the folder does not exist) creates the folder and runs it again.
func (s *imapSession) retryCreate(f func() error) error {
	err := f()
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeTryCreate {
		if err := s.c.Create(s.p.mb.MoveTo, nil).Wait(); err != nil {
			return describe("create "+s.p.mb.MoveTo, err)
		}
		err = f()
	}
	return err
}

// deleteUIDs flags set \Deleted and expunges it: UID EXPUNGE when the
// server has UIDPLUS (or is IMAP4rev2), else EXPUNGE, which also removes
// other mail someone marked \Deleted in this mailbox, as any client's
// would.
func (s *imapSession) deleteUIDs(set imap.UIDSet) error {
	if err := s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return err
	}
	caps := s.c.Caps()
	if caps.Has(imap.CapUIDPlus) || caps.Has(imap.CapIMAP4rev2) {
		return s.c.UIDExpunge(set).Close()
	}
	return s.c.Expunge().Close()
}

// xoauth2 is the SASL XOAUTH2 client of Google and Microsoft: the user
// and a bearer token in the initial response; a failure comes as a JSON
// challenge, answered with an empty response before the server's NO.
type xoauth2 struct {
	user, token string
	failure     []byte
}

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	x.failure = challenge
	return []byte{}, nil
}

// explain adds the server's JSON failure detail to err.
func (x *xoauth2) explain(err error) error {
	if err == nil || len(x.failure) == 0 {
		return err
	}
	return fmt.Errorf("%w (server said %s)", err, strings.TrimSpace(string(x.failure)))
}
