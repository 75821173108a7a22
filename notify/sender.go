package notify

import (
	"context"
	"errors"
	"fmt"

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
	// after Render: a DKIM signer (a later issue) adds its header in front
	// and signs the bytes as they are.
	Data []byte
}

// Sender hands a mail over for delivery. It is the seam between the
// notifier and the transport: Spool (files, when no relay is configured)
// implements it today, the SMTP relay client will, and a DKIM signer will
// be a Sender that signs m.Data and passes the mail on to the next one.
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

// NewSender returns the Sender cfg asks for: a Spool on cfg.OutgoingDir()
// when outgoing.relay is "". A relay is not implemented yet (a later issue
// brings the SMTP client), so any other value is an error.
func NewSender(cfg *config.Config) (Sender, error) {
	if cfg.Outgoing.Relay != "" {
		return nil, fmt.Errorf("notify: outgoing.relay %q: sending through a relay is not implemented yet; leave it empty to write mail to %s", cfg.Outgoing.Relay, cfg.OutgoingDir())
	}
	return NewSpool(cfg.OutgoingDir()), nil
}
