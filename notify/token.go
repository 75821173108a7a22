package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/trackerd/trackerd/store"
)

// Tokens (see the package documentation, "Tokens").
//
// A token is a row in the store's tokens table, so the web view
// (store.Token) and the gateway (store.BounceToken) look it up without
// knowing how it was made. Its value is HMAC-SHA256(key, kind, user, issue)
// — 128 bits, lower-case base32 — so the notifier finds the same token for
// the same (kind, user, issue) every time without a lookup the store does
// not offer, and creates the row on first use (INSERT … ON CONFLICT DO
// NOTHING underneath: safe when two workers race). The key is
// DATA_DIR/TokenKeyFile, 32 random bytes created on first use.

// TokenKeyFile is the name, inside tracker.data_dir, of the secret the
// unsubscribe and bounce tokens are derived from. Keep it private (mode
// 0600) and backed up with the database; several trackerd processes on one
// PostgreSQL database should share it (each would otherwise create its own,
// equally valid, tokens). Deleting it only makes new mail carry new
// tokens: the old ones stay valid, being rows in the store.
const TokenKeyFile = "token.key"

// Token kinds, as the HMAC input tells them apart.
const (
	kindUnsubscribe = "unsubscribe"
	kindBounce      = "bounce"
)

// tokenEncoding is lower-case base32 without padding: letters and digits
// only, safe in a URL path and in an address's local part, and unchanged
// by the case folding some relays (and the gateway) apply to local parts.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// deriveToken returns the token for (kind, userID, issueID) under key.
func deriveToken(key []byte, kind string, userID, issueID int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("trackerd-token\x00" + kind + "\x00" + strconv.FormatInt(userID, 10) + "\x00" + strconv.FormatInt(issueID, 10)))
	return tokenEncoding.EncodeToString(m.Sum(nil)[:16])
}

// ensureToken makes sure the store holds token for (userID, issueID) of
// kind, creating the row if missing, and returns the token.
func ensureToken(ctx context.Context, r Reader, key []byte, kind string, userID, issueID int64) (string, error) {
	tok := deriveToken(key, kind, userID, issueID)
	get, create := r.Token, r.CreateToken
	if kind == kindBounce {
		get, create = r.BounceToken, r.CreateBounceToken
	}
	check := func() (bool, error) {
		u, i, err := get(ctx, tok)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s token: %w", kind, err)
		}
		if u != userID || i != issueID {
			return false, fmt.Errorf("%s token for user %d, issue %d is already stored for user %d, issue %d", kind, userID, issueID, u, i)
		}
		return true, nil
	}
	if ok, err := check(); ok || err != nil {
		return tok, err
	}
	err := create(ctx, tok, userID, issueID)
	if errors.Is(err, store.ErrDuplicate) {
		// Another worker created it meanwhile; make sure it is ours.
		if ok, err := check(); ok || err != nil {
			return tok, err
		}
	}
	if err != nil {
		return "", fmt.Errorf("create %s token: %w", kind, err)
	}
	return tok, nil
}

// loadTokenKey reads dataDir/TokenKeyFile, creating it (and dataDir) first
// if it does not exist. Creation is atomic and safe against other
// processes doing the same: the key is written to a temporary file,
// fsynced, and hard-linked to its name, which fails if another process got
// there first — then its key is read.
func loadTokenKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, TokenKeyFile)
	key, err := readTokenKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (Go 1.24+)
	tmp, err := os.CreateTemp(dataDir, TokenKeyFile+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(raw) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("token key: write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return readTokenKey(path)
}

// readTokenKey reads and checks a key file: at least 32 bytes, hex.
func readTokenKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("token key: %s must hold at least 32 bytes in hex (delete it to have a new one made)", path)
	}
	return key, nil
}

// syncDir fsyncs a directory, making a rename or link in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
