package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/trackerd/trackerd/config"
)

// Mail is one rendered mail for one recipient, ready for a Sender.
type Mail struct {
	// EnvelopeFrom is the SMTP envelope sender (MAIL FROM) without angle
	// brackets: local+bounce-TOKEN@domain for a notification, "" (the null
	// sender, RFC 5321 §4.5.5) for an error reply, so nothing bounces back.
	EnvelopeFrom string
	// To is the one envelope recipient (RCPT TO), a bare address.
	To string
	// Data is the whole message, header and body, with CRLF line ends,
	// 7-bit clean, no line longer than 998 octets. Nothing may change it
	// after Render: the DKIM signer adds its header in front and signs
	// the bytes as they are.
	Data []byte
}

// Sender hands a mail over for delivery. It is the seam between the
// notifier and the transport: Spool (files, when no relay is configured)
// and Relay (an SMTP relay) implement it, and DKIM is a Sender that signs
// m.Data and passes the mail on to the next one.
//
// Send returns nil only when the mail is durably handed over (the spool file
// is fsynced, or the relay answered 250 to DATA): the outbox row is then
// marked sent and never tried again. Any error means the mail was not
// accepted; it is retried with backoff unless Permanent(err) is true.
// Send must not keep m after it returns, must honour ctx, and must be safe
// for concurrent use.
type Sender interface {
	Send(ctx context.Context, m *Mail) error
}

// PermanentError marks an error that retrying cannot fix: a rendering
// problem (the issue or message is gone, a recipient address is unusable)
// or a 5xx answer from the relay. The worker gives such a row up at once.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent reports whether err, or any error it wraps, is a
// *PermanentError. Errors that are not marked are temporary.
func Permanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// permanentf returns a *PermanentError with a formatted message (%w works).
func permanentf(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// NewSender returns the Sender cfg asks for: a Relay for outgoing.relay
// (with outgoing.connections, outgoing.timeout and the AUTH credentials),
// or a Spool on cfg.OutgoingDir() when it is ""; wrapped in a DKIM signer
// when outgoing.dkim_* are set. The caller closes it with CloseSender.
func NewSender(cfg *config.Config) (Sender, error) {
	o := cfg.Outgoing
	var s Sender
	if o.Relay == "" {
		s = NewSpool(cfg.OutgoingDir())
	} else {
		r, err := NewRelay(RelayOptions{URL: o.Relay, Username: o.Username, Password: o.Password,
			Connections: o.Connections, Timeout: time.Duration(o.Timeout)})
		if err != nil {
			return nil, fmt.Errorf("notify: outgoing.relay: %w", err)
		}
		s = r
	}
	if o.DKIMDomain != "" && len(o.DKIMKey) > 0 {
		d, err := NewDKIM(s, o.DKIMDomain, o.DKIMSelector, o.DKIMKey)
		if err != nil {
			return nil, fmt.Errorf("notify: outgoing.dkim_key_file: %w", err)
		}
		s = d
	}
	return s, nil
}

// CloseSender releases what s holds (a Relay's open connections), if
// anything.
func CloseSender(s Sender) error {
	if c, ok := s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// UnavailableError marks a failure of the transport as a whole, not of
// one mail: the relay cannot be reached, refuses TLS or our credentials.
// It is temporary. The worker stops trying further rows for a while when
// it meets one (see Worker), so that an outage does not burn every row's
// attempts.
type UnavailableError struct {
	Err error
}

func (e *UnavailableError) Error() string { return e.Err.Error() }

func (e *UnavailableError) Unwrap() error { return e.Err }

// unavailable reports whether err, or any error it wraps, is an
// *UnavailableError.
func unavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}
