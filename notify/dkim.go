package notify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIM is a Sender that DKIM-signs each mail (RFC 6376) and passes it on
// to the next Sender: the DKIM-Signature field goes in front of Mail.Data,
// which is signed as Render made it.
//
// Signatures use relaxed/relaxed canonicalization (robust against relays
// that refold headers) and rsa-sha256 or ed25519-sha256 by the key. They
// cover dkimHeaders; From, Subject, List-Unsubscribe and
// List-Unsubscribe-Post are signed once more than they occur
// ("oversigned"), so that nobody on the way can add a second one.
// List-Unsubscribe and List-Unsubscribe-Post must be signed for one-click
// unsubscribe to be honoured (RFC 8058 §4).
type DKIM struct {
	next Sender
	opts dkim.SignOptions
}

// dkimHeaders are the fields signed, in the order RFC 6376 §5.4.1
// suggests, then ours. A field missing from a mail is signed as absent.
var dkimHeaders = []string{
	"From", "From", "Reply-To", "Subject", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"List-Id", "List-Unsubscribe", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Unsubscribe-Post",
	"Auto-Submitted", "X-Tracker-Loop", "X-Tracker-Issue", "X-Tracker-Status", "X-Tracker-Priority",
}

// NewDKIM returns a DKIM signer for domain and selector with the PEM
// private key keyPEM (PKCS#8 RSA or Ed25519, or PKCS#1 RSA), passing
// signed mail to next.
func NewDKIM(next Sender, domain, selector string, keyPEM []byte) (*DKIM, error) {
	signer, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	d := &DKIM{next: next, opts: dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaders,
	}}
	// Sign something once, so that a bad domain or selector shows now.
	if _, err := d.sign([]byte("From: a@b\r\n\r\n")); err != nil {
		return nil, err
	}
	return d, nil
}

// parseKey reads the first PEM private key block of b.
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		blk, rest := pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key found")
		}
		b = rest
		if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			if s, ok := k.(crypto.Signer); ok {
				return s, nil
			}
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
			return k, nil
		}
	}
}

// sign returns the DKIM-Signature field (with its CRLF) for data.
func (d *DKIM) sign(data []byte) (string, error) {
	opts := d.opts // the signer must not share one options value
	s, err := dkim.NewSigner(&opts)
	if err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	if _, err := io.Copy(s, bytes.NewReader(data)); err != nil {
		s.Close()
		return "", fmt.Errorf("dkim: %w", err)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	return s.Signature(), nil
}

// Send signs m and passes a signed copy to the next Sender. A signing
// failure is temporary (the key is fine, or NewDKIM would have failed).
func (d *DKIM) Send(ctx context.Context, m *Mail) error {
	sig, err := d.sign(m.Data)
	if err != nil {
		return err
	}
	signed := *m
	signed.Data = make([]byte, 0, len(sig)+len(m.Data))
	signed.Data = append(append(signed.Data, sig...), m.Data...)
	return d.next.Send(ctx, &signed)
}

// Close closes the next Sender if it has a Close method.
func (d *DKIM) Close() error {
	if c, ok := d.next.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
