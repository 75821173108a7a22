package notify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSpool: files appear in new/ complete, with the envelope as trace
// fields, nothing stays in tmp/, and concurrent sends get unique names.
func TestSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outgoing")
	s := NewSpool(dir)
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			m := &Mail{EnvelopeFrom: "issues+bounce-abc@example.org", To: fmt.Sprintf("r%d@example.net", i),
				Data: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))}
			errs <- s.Send(t.Context(), m)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	for _, sub := range []string{"tmp", "cur"} {
		if ents, err := os.ReadDir(filepath.Join(dir, sub)); err != nil || len(ents) != 0 {
			t.Errorf("%s/ holds %d entries (%v), want none", sub, len(ents), err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Fatalf("new/ holds %d files, want %d (names not unique?)", len(ents), n)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if strings.ContainsAny(e.Name(), "/:") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("bad Maildir name %q", e.Name())
		}
		data, err := os.ReadFile(filepath.Join(dir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(string(data), "Return-Path: <issues+bounce-abc@example.org>\r\nDelivered-To: r%d@example.net\r\n", &i); err != nil {
			t.Fatalf("%s starts %q: %v", e.Name(), data[:min(len(data), 80)], err)
		}
		want := fmt.Sprintf("Return-Path: <issues+bounce-abc@example.org>\r\nDelivered-To: r%d@example.net\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i, i)
		if string(data) != want {
			t.Errorf("%s = %q, want %q", e.Name(), data, want)
		}
		if seen[string(data)] {
			t.Errorf("mail %d delivered twice", i)
		}
		seen[string(data)] = true
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v (%v), want 0600", e.Name(), info.Mode(), err)
		}
	}
}

func TestSpoolNullSender(t *testing.T) {
	dir := t.TempDir()
	if err := NewSpool(dir).Send(t.Context(), &Mail{To: "zed@example.net", Data: []byte("Subject: x\r\n\r\n")}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	if len(ents) != 1 {
		t.Fatalf("new/ holds %d files", len(ents))
	}
	data, _ := os.ReadFile(filepath.Join(dir, "new", ents[0].Name()))
	if !bytes.HasPrefix(data, []byte("Return-Path: <>\r\nDelivered-To: zed@example.net\r\n")) {
		t.Errorf("file starts %q", data)
	}
}

func TestSpoolRefuses(t *testing.T) {
	s := NewSpool(t.TempDir())
	for _, m := range []*Mail{
		{To: ""},
		{To: "a@example.net\r\nX-Evil: 1"},
		{EnvelopeFrom: "x y@example.org", To: "a@example.net"},
	} {
		if err := s.Send(t.Context(), m); !Permanent(err) {
			t.Errorf("Send(from %q to %q) = %v, want a permanent error", m.EnvelopeFrom, m.To, err)
		}
	}
	// A spool that cannot be written is a temporary failure.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewSpool(file).Send(t.Context(), &Mail{To: "a@example.net"}); err == nil || Permanent(err) {
		t.Errorf("Send into a file = %v, want a temporary error", err)
	}
}
