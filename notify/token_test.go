package notify

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestTokenKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = loadTokenKey(dir) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("loadTokenKey #%d = %x, %v; want the same 32 bytes as #0 (%x)", i, keys[i], errs[i], keys[0])
		}
	}
	info, err := os.Stat(filepath.Join(dir, TokenKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", info.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("data dir holds %d entries, want the key file alone", len(ents))
	}
	if again, err := loadTokenKey(dir); err != nil || !bytes.Equal(again, keys[0]) {
		t.Errorf("reloaded key = %x, %v", again, err)
	}
	if err := os.WriteFile(filepath.Join(dir, TokenKeyFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTokenKey(dir); err == nil {
		t.Errorf("a corrupt key file was accepted")
	}

	// Tokens differ by kind, user, issue and key, and are lower-case.
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	seen := map[string]bool{}
	for _, tok := range []string{deriveToken(k1, kindBounce, 1, 1), deriveToken(k1, kindUnsubscribe, 1, 1),
		deriveToken(k1, kindBounce, 1, 2), deriveToken(k1, kindBounce, 2, 1), deriveToken(k2, kindBounce, 1, 1)} {
		if seen[tok] || len(tok) != 26 || bytes.ContainsFunc([]byte(tok), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') }) {
			t.Errorf("token %q repeats or is not 26 lower-case base32 characters", tok)
		}
		seen[tok] = true
	}
}

func TestNewSender(t *testing.T) {
	cfg := testConfig(t)
	s, err := NewSender(cfg)
	if sp, ok := s.(*Spool); err != nil || !ok || sp.Dir() != cfg.OutgoingDir() {
		t.Errorf("NewSender without a relay = %#v, %v; want a Spool on %s", s, err, cfg.OutgoingDir())
	}
	cfg.Outgoing.Relay = "smtp://relay.example.org:2525"
	s, err = NewSender(cfg)
	if r, ok := s.(*Relay); err != nil || !ok || r.addr != "relay.example.org:2525" || cap(r.slots) != cfg.Outgoing.Connections {
		t.Errorf("NewSender with a relay = %#v, %v; want a Relay to relay.example.org:2525", s, err)
	}
	cfg.Outgoing.Relay = "ftp://relay.example.org"
	if s, err := NewSender(cfg); err == nil {
		t.Errorf("NewSender with an ftp relay = %#v, want an error", s)
	}
}
