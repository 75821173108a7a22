package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Spool is the Sender used when no relay is configured: it delivers each
// mail as one file into a Maildir (DATA_DIR/outgoing), where a test, an
// operator or a local MDA can pick it up.
//
// Delivery follows the Maildir protocol: the file is written under a
// unique name in tmp/, fsynced, renamed into new/, and new/ is fsynced; a
// file in new/ is therefore always complete, and a nil error means it is on
// disk. A crash can leave a partial file in tmp/, never in new/. tmp/, new/
// and cur/ are created (mode 0700) when missing; files are mode 0600.
//
// Unique names are "SECONDS.MMICROSPPIDQSEQRRANDOM.HOST" (the modern
// Maildir form), unique across processes and calls.
//
// A Maildir file holds a message as an MDA would store it: Data with two
// trace fields in front, "Return-Path: <envelope sender>" (<> for the null
// sender) and "Delivered-To: recipient", so the envelope is not lost. Line
// ends stay CRLF, as on the wire; Maildir readers (Dovecot, mutt,
// go-message) accept them.
type Spool struct {
	dir  string
	host string
	seq  atomic.Uint64
}

// NewSpool returns a Spool delivering into the Maildir dir. Nothing is
// created until the first Send.
func NewSpool(dir string) *Spool {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	// Maildir escapes '/' and ':' in the host part.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return &Spool{dir: dir, host: host}
}

// Dir returns the Maildir the spool delivers into.
func (s *Spool) Dir() string { return s.dir }

// Send writes m into new/. Errors are temporary (the disk), except for a
// mail whose envelope cannot be written, which is a *PermanentError.
func (s *Spool) Send(ctx context.Context, m *Mail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.To == "" || strings.ContainsFunc(m.To+m.EnvelopeFrom, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return permanentf("spool: bad envelope: from %q to %q", m.EnvelopeFrom, m.To)
	}
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	name := s.uniqueName()
	tmp := filepath.Join(s.dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var trace bytes.Buffer
	trace.WriteString("Return-Path: <" + m.EnvelopeFrom + ">\r\nDelivered-To: " + m.To + "\r\n")
	_, err = f.Write(trace.Bytes())
	if err == nil {
		_, err = f.Write(m.Data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, "new", name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: %w", err)
	}
	if err := syncDir(filepath.Join(s.dir, "new")); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// uniqueName returns a Maildir file name no other delivery uses: time,
// process id, a per-Spool sequence number and 64 random bits.
func (s *Spool) uniqueName() string {
	now := time.Now()
	rnd := make([]byte, 8)
	_, _ = rand.Read(rnd) // crypto/rand.Read never fails (Go 1.24+)
	return strconv.FormatInt(now.Unix(), 10) +
		".M" + strconv.Itoa(now.Nanosecond()/1000) +
		"P" + strconv.Itoa(os.Getpid()) +
		"Q" + strconv.FormatUint(s.seq.Add(1), 10) +
		"R" + hex.EncodeToString(rnd) +
		"." + s.host
}
