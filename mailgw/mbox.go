package mailgw

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// ReadMbox calls fn with every message of an mbox file, in order, without
// its "From " separator line and with mboxrd/mboxo escaping undone
// (">From " → "From "). fn owns the slice it is given. Reading stops at
// fn's first error, which ReadMbox returns.
func ReadMbox(r io.Reader, fn func(raw []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur []byte
	started := false
	flush := func() error {
		if !started {
			return nil
		}
		msg := cur
		cur = nil
		// The blank line before the next separator belongs to the mbox.
		if n := len(msg); n > 0 && msg[n-1] == '\n' {
			if n > 1 && msg[n-2] == '\n' {
				msg = msg[:n-1]
			} else if n > 2 && msg[n-2] == '\r' && msg[n-3] == '\n' {
				msg = msg[:n-2]
			}
		}
		return fn(msg)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: gather it whole.
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			switch {
			case bytes.HasPrefix(line, []byte("From ")):
				if err := flush(); err != nil {
					return err
				}
				started = true
			case !started:
				// Text before the first separator: not an mbox message.
			default:
				if unescaped, ok := unescapeFrom(line); ok {
					line = unescaped
				}
				cur = append(cur, line...)
			}
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return fmt.Errorf("read mbox: %w", err)
		}
	}
}

// unescapeFrom turns ">From ", ">>From " ... into one '>' less.
func unescapeFrom(line []byte) ([]byte, bool) {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if i == 0 || !bytes.HasPrefix(line[i:], []byte("From ")) {
		return nil, false
	}
	return line[1:], true
}

// MaildirFiles lists the message files of a Maildir (new/ then cur/, each
// sorted by name, which starts with the delivery time).
func MaildirFiles(dir string) ([]string, error) {
	var out []string
	found := false
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read maildir: %w", err)
		}
		found = true
		var names []string
		for _, e := range entries {
			if e.Type().IsRegular() && e.Name()[0] != '.' {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, filepath.Join(dir, sub, n))
		}
	}
	if !found {
		return nil, fmt.Errorf("read maildir: %s has neither new/ nor cur/", dir)
	}
	return out, nil
}
