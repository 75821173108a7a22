package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds a status line or a line of a listing (CAPA, LIST,
// UIDL). RFC 2449 §4 limits responses to 512 octets including CRLF; a few
// servers send longer greetings and capability lines, so the client
// accepts sixteen times that and no more.
const maxLine = 8192

// maxListing bounds the lines of one listing, so that a server cannot
// make the client allocate without end. A million messages in one
// maildrop is far beyond any mailbox a tracker polls.
const maxListing = 1 << 20

// Error is a -ERR reply (RFC 1939 §3). Code is the extended response code
// of RFC 2449 §8 and RFC 3206 when the server sent one ("IN-USE",
// "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM", "AUTH"), else "".
type Error struct {
	Cmd  string // the command's keyword ("PASS", "RETR", ...), or "greeting"
	Code string
	Text string
}

func (e *Error) Error() string {
	s := "pop3: " + e.Cmd + ": -ERR"
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	return s
}

// Temporary reports whether the server said the failure is temporary:
// the maildrop is in use by another session, logins come too fast, or a
// system fault (RFC 2449 §8.1, RFC 3206 §4).
func (e *Error) Temporary() bool {
	switch strings.ToUpper(e.Code) {
	case "IN-USE", "LOGIN-DELAY", "SYS/TEMP":
		return true
	}
	return false
}

// ProtocolError is a reply that does not follow the protocol: neither
// +OK nor -ERR, a line too long, a listing that does not parse. The
// session cannot go on after one.
type ProtocolError struct {
	Cmd, Problem string
}

func (e *ProtocolError) Error() string { return "pop3: " + e.Cmd + ": " + e.Problem }

// ErrTooLarge is returned by Retr for a message over its limit. The
// message was read to its end and discarded: the session goes on.
var ErrTooLarge = errors.New("pop3: message larger than the limit")

// readLine reads one line of at most maxLine bytes and returns it without
// its line ending (CRLF, or a bare LF, which some servers send).
func readLine(r *bufio.Reader, cmd string) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			return "", &ProtocolError{Cmd: cmd, Problem: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("pop3: %s: %w", cmd, err)
		}
		break
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return string(line), nil
}

// readReply reads a status line (RFC 1939 §3): "+OK text" gives the text
// and a nil error; "-ERR text" gives an *Error carrying an RFC 2449
// response code when there is one. Anything else is a *ProtocolError.
func readReply(r *bufio.Reader, cmd string) (string, error) {
	line, err := readLine(r, cmd)
	if err != nil {
		return "", err
	}
	status, text, _ := strings.Cut(line, " ")
	switch strings.ToUpper(status) {
	case "+OK":
		return text, nil
	case "-ERR":
		e := &Error{Cmd: cmd, Text: text}
		// RFC 2449 §8: "-ERR [CODE] text"; a code is a slash-separated
		// list of atoms, so anything with a space is ordinary text.
		if rest, ok := strings.CutPrefix(text, "["); ok {
			if code, after, ok := strings.Cut(rest, "]"); ok && code != "" && !strings.ContainsAny(code, " \t") {
				e.Code, e.Text = code, strings.TrimLeft(after, " ")
			}
		}
		return "", e
	}
	return "", &ProtocolError{Cmd: cmd, Problem: fmt.Sprintf("reply %q is neither +OK nor -ERR", clip(line))}
}

// readListing reads the lines of a multi-line response after its status
// line, up to the terminating "." line, with byte-stuffing removed
// (RFC 1939 §3).
func readListing(r *bufio.Reader, cmd string) ([]string, error) {
	var lines []string
	for {
		line, err := readLine(r, cmd)
		if err != nil {
			return nil, err
		}
		if line == "." {
			return lines, nil
		}
		if len(lines) == maxListing {
			return nil, &ProtocolError{Cmd: cmd, Problem: fmt.Sprintf("more than %d lines", maxListing)}
		}
		lines = append(lines, strings.TrimPrefix(line, "."))
	}
}

// readBody reads a multi-line message body after RETR's status line up to
// the terminating "." line, removing the byte-stuffing (a line that
// starts with "." has one more "." in front on the wire), and keeps every
// other byte, line endings included. Past limit bytes it goes on reading
// to the end and discards, then returns ErrTooLarge, so the session stays
// in step with the server.
func readBody(r *bufio.Reader, cmd string, limit int64) ([]byte, error) {
	var (
		buf       bytes.Buffer
		tooLarge  bool
		lineStart = true
	)
	for {
		chunk, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("pop3: %s: %w", cmd, err)
		}
		complete := err == nil // chunk ends the line
		if lineStart && len(chunk) > 0 && chunk[0] == '.' {
			if complete && (string(chunk) == ".\r\n" || string(chunk) == ".\n") {
				if tooLarge {
					return nil, ErrTooLarge
				}
				return buf.Bytes(), nil
			}
			chunk = chunk[1:]
		}
		lineStart = complete
		if tooLarge {
			continue
		}
		if int64(buf.Len()+len(chunk)) > limit {
			tooLarge = true
			buf = bytes.Buffer{}
			continue
		}
		buf.Write(chunk)
	}
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
