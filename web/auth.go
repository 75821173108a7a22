package web

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trackerd/trackerd/store"
)

// HTTP basic auth against users that have a password. A password check
// costs a PBKDF2 with 600,000 iterations (a few hundred milliseconds), and
// a browser sends the credentials with every request, so a successful
// check is remembered for authTTL; the remembered key includes the stored
// hash, so a changed password takes effect at once. At most two checks
// run at a time, so a flood of guesses cannot take every core.

const (
	authTTL        = 10 * time.Minute
	authCacheLimit = 4096
)

type authCache struct {
	sem chan struct{}
	mu  sync.Mutex
	ok  map[[32]byte]time.Time // credential key -> expiry
}

func newAuthCache() *authCache {
	return &authCache{sem: make(chan struct{}, 2), ok: map[[32]byte]time.Time{}}
}

func credentialKey(login, password, hash string) [32]byte {
	return sha256.Sum256([]byte(login + "\x00" + password + "\x00" + hash))
}

func (c *authCache) valid(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.ok[k]
	if ok && now.After(exp) {
		delete(c.ok, k)
		return false
	}
	return ok
}

func (c *authCache) remember(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ok) >= authCacheLimit {
		clear(c.ok)
	}
	c.ok[k] = now.Add(authTTL)
}

// authenticate returns the user the request's basic auth credentials name
// (a username or any of the user's addresses) when the password matches,
// nil when there are none or they are wrong, or an error when the store
// failed.
func (s *Server) authenticate(r *http.Request) (*store.User, error) {
	login, password, ok := r.BasicAuth()
	login = strings.TrimSpace(login)
	if !ok || login == "" || password == "" {
		return nil, nil
	}
	ctx := r.Context()
	u, err := s.st.UserByUsername(ctx, login)
	if errors.Is(err, store.ErrNotFound) && strings.Contains(login, "@") {
		u, err = s.st.UserByAddress(ctx, login)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if u.PasswordHash == "" {
		return nil, nil
	}
	key := credentialKey(login, password, u.PasswordHash)
	if s.auth.valid(key, time.Now()) {
		return u, nil
	}
	select {
	case s.auth.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	good := store.CheckPassword(u.PasswordHash, password)
	<-s.auth.sem
	if !good {
		s.log.Info("web: failed login", "login", login, "remote", r.RemoteAddr)
		return nil, nil
	}
	s.auth.remember(key, time.Now())
	return u, nil
}
