package testmail

import (
	"io"

	"github.com/emersion/go-smtp"
)

// Send sends one mail on c (MAIL, RCPT for each of to, DATA) and returns
// the text of the reply to DATA, or the first error: an *smtp.SMTPError
// when the server refused.
func Send(c *smtp.Client, from string, to []string, raw string) (string, error) {
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, raw); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return resp.StatusText, nil
}
