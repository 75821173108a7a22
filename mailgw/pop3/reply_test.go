package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/corpus"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in       string
		text     string
		code     string // of the *Error
		errText  string
		protocol bool
	}{
		{in: "+OK\r\n"},
		{in: "+OK 2 320\r\n", text: "2 320"},
		{in: "+ok lower case\n", text: "lower case"},
		{in: "-ERR no such message\r\n", errText: "no such message"},
		{in: "-ERR [IN-USE] Mailbox locked\r\n", code: "IN-USE", errText: "Mailbox locked"},
		{in: "-ERR [SYS/TEMP] try later\r\n", code: "SYS/TEMP", errText: "try later"},
		{in: "-ERR [not a code] text\r\n", errText: "[not a code] text"},
		{in: "-ERR [unclosed\r\n", errText: "[unclosed"},
		{in: "* OK IMAP here\r\n", protocol: true},
		{in: "+OKAY\r\n", protocol: true},
		{in: "+OK " + strings.Repeat("x", maxLine) + "\r\n", protocol: true},
	} {
		text, err := readReply(bufio.NewReaderSize(strings.NewReader(tc.in), 64), "TEST")
		var e *Error
		var pe *ProtocolError
		switch {
		case tc.protocol:
			if !errors.As(err, &pe) {
				t.Errorf("readReply(%q) = %q, %v; want a ProtocolError", clip(tc.in), text, err)
			}
		case tc.errText != "":
			if !errors.As(err, &e) || e.Code != tc.code || e.Text != tc.errText {
				t.Errorf("readReply(%q) = %q, %#v; want -ERR code %q text %q", tc.in, text, err, tc.code, tc.errText)
			}
		default:
			if err != nil || text != tc.text {
				t.Errorf("readReply(%q) = %q, %v; want %q", tc.in, text, err, tc.text)
			}
		}
	}
	if _, err := readReply(bufio.NewReader(strings.NewReader("+OK no end")), "TEST"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("readReply of a line without its end: %v, want io.ErrUnexpectedEOF", err)
	}
	if e := (&Error{Code: "in-use"}); !e.Temporary() {
		t.Errorf("[in-use] is not Temporary")
	}
	if e := (&Error{Code: "AUTH"}); e.Temporary() {
		t.Errorf("[AUTH] is Temporary")
	}
}

func TestReadBody(t *testing.T) {
	long := strings.Repeat("a", 40000) // longer than the reader's buffer
	for _, tc := range []struct {
		name, wire, want string
		limit            int64
		tooLarge         bool
	}{
		{name: "empty", wire: ".\r\n", want: ""},
		{name: "plain", wire: "Subject: x\r\n\r\nbody\r\n.\r\n", want: "Subject: x\r\n\r\nbody\r\n"},
		{name: "stuffed", wire: "a\r\n..\r\n...x\r\n.y\r\n.\r\n", want: "a\r\n.\r\n..x\r\ny\r\n"},
		{name: "bare LF", wire: "a\n..b\n.\n", want: "a\n.b\n"},
		{name: "dot inside a line", wire: "a.b\r\n x.\r\n.\r\n", want: "a.b\r\n x.\r\n"},
		{name: "long line then dot", wire: long + "\r\n.." + long + "\r\n.\r\n", want: long + "\r\n." + long + "\r\n"},
		{name: "long line starting with a dot", wire: "." + long + "\r\n.\r\n", want: long + "\r\n"},
		{name: "at the limit", wire: "abc\r\n.\r\n", want: "abc\r\n", limit: 5},
		{name: "over the limit", wire: "abcd\r\n" + long + "\r\n.\r\n", limit: 5, tooLarge: true},
	} {
		limit := tc.limit
		if limit == 0 {
			limit = 1 << 20
		}
		// What follows the body must still be there: the session stays in step.
		r := bufio.NewReaderSize(strings.NewReader(tc.wire+"+OK next\r\n"), 4096)
		got, err := readBody(r, "RETR", limit)
		if tc.tooLarge {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s: readBody = %d bytes, %v; want ErrTooLarge", tc.name, len(got), err)
			}
		} else if err != nil || string(got) != tc.want {
			t.Errorf("%s: readBody = %q, %v; want %q", tc.name, clip(string(got)), err, clip(tc.want))
		}
		if text, err := readReply(r, "NEXT"); err != nil || text != "next" {
			t.Errorf("%s: after the body: %q, %v; want the next reply", tc.name, text, err)
		}
	}
	if _, err := readBody(bufio.NewReader(strings.NewReader("a\r\nb\r\n")), "RETR", 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("readBody without the terminating line: %v, want io.ErrUnexpectedEOF", err)
	}
}

// FuzzReply feeds arbitrary server output to a whole client session:
// greeting, CAPA, UIDL, LIST, STAT, RETR and QUIT. Nothing may panic, and
// every call must return once the input is used up.
func FuzzReply(f *testing.F) {
	f.Add([]byte("+OK ready <1.2@host>\r\n+OK\r\nUIDL\r\nSASL PLAIN\r\n.\r\n+OK\r\n1 abc\r\n2 def\r\n.\r\n+OK\r\n1 120\r\n.\r\n+OK 1 120\r\n+OK\r\n..x\r\n.\r\n+OK bye\r\n"))
	f.Add([]byte("-ERR [SYS/PERM] go away\r\n"))
	f.Add([]byte("+OK\n-ERR\n+OK\n1\n.\n"))
	f.Add([]byte("+OK\r\n+OK\r\n" + strings.Repeat("x", 9000) + "\r\n"))
	f.Add([]byte("+OK\r\n+OK\r\n.\r\n+OK\r\n0 x\r\n.\r\n+OK\r\n1 -5\r\n.\r\n+OK -1 2\r\n+OK\r\n.\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		go func() {
			// The server side: discard what the client sends, answer
			// with data, then hang up.
			go io.Copy(io.Discard, server)
			server.Write(data)
			server.Close()
		}()
		defer client.Close()
		c, err := NewClient(client, "localhost", &Options{Timeout: 5 * time.Second})
		if err != nil {
			return
		}
		c.Capa()
		c.UIDL()
		c.List()
		c.Stat()
		if b, err := c.Retr(1, 1000); err == nil && len(b) > 1000 {
			t.Fatalf("Retr returned %d bytes over a limit of 1000", len(b))
		}
		c.Quit()
	})
}

// TestFuzzSeedsInCorpus keeps the fuzz seeds honest: the first parses as
// a full session.
func TestFuzzSeedsInCorpus(t *testing.T) {
	data := "+OK ready <1.2@host>\r\n+OK\r\nUIDL\r\nSASL PLAIN\r\n.\r\n+OK\r\n1 abc\r\n2 def\r\n.\r\n+OK\r\n1 120\r\n.\r\n+OK 1 120\r\n+OK\r\n..x\r\n.\r\n+OK bye\r\n"
	client, server := net.Pipe()
	go func() {
		go io.Copy(io.Discard, server)
		server.Write([]byte(data))
	}()
	defer server.Close()
	c, err := NewClient(client, "localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.CanAPOP() {
		t.Errorf("greeting %q: CanAPOP = false", c.Greeting())
	}
	caps, err := c.Capa()
	if err != nil || !caps.Has("uidl") || !caps.SASL("plain") {
		t.Fatalf("Capa = %v, %v", caps, err)
	}
	uidl, err := c.UIDL()
	if err != nil || len(uidl) != 2 || uidl[1] != (Message{Num: 2, UID: "def"}) {
		t.Fatalf("UIDL = %v, %v", uidl, err)
	}
	list, err := c.List()
	if err != nil || len(list) != 1 || list[0] != (Message{Num: 1, Size: 120}) {
		t.Fatalf("List = %v, %v", list, err)
	}
	if n, size, err := c.Stat(); n != 1 || size != 120 || err != nil {
		t.Fatalf("Stat = %d, %d, %v", n, size, err)
	}
	if b, err := c.Retr(1, 100); err != nil || !bytes.Equal(b, []byte(".x\r\n")) {
		t.Fatalf("Retr = %q, %v", b, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("Quit: %v", err)
	}
}

// TestReadBodyCorpus: every mail of the shared corpus, byte-stuffed and
// sent as a RETR body (RFC 1939 §3), comes back byte for byte.
func TestReadBodyCorpus(t *testing.T) {
	n := 0
	err := filepath.WalkDir(corpus.Dir(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".eml") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Servers send CRLF lines and end the last line before ".".
		want := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		if len(want) > 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(want, '\r', '\n')
		}
		var wire bytes.Buffer
		for _, line := range bytes.SplitAfter(want, []byte("\r\n")) {
			if bytes.HasPrefix(line, []byte(".")) {
				wire.WriteByte('.')
			}
			wire.Write(line)
		}
		wire.WriteString(".\r\n")
		got, err := readBody(bufio.NewReader(&wire), "RETR", 1<<30)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: readBody = %d bytes, %v; want the %d bytes of the mail", path, len(got), err, len(want))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no .eml files in the corpus")
	}
}
