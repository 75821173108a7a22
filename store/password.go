package store

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Password hashes are PBKDF2-HMAC-SHA256 (the standard library has no
// bcrypt or argon2), written as "pbkdf2-sha256$ITERATIONS$SALT$KEY" with
// unpadded standard base64, so the cost can be raised later without
// invalidating stored hashes.
const (
	passwordScheme     = "pbkdf2-sha256"
	passwordIterations = 600_000 // OWASP's 2023 figure for PBKDF2-HMAC-SHA256
	passwordSaltLen    = 16
	passwordKeyLen     = 32
)

// HashPassword returns a salted hash of password for User.PasswordHash.
func HashPassword(password string) (string, error) {
	return hashPassword(password, passwordIterations)
}

func hashPassword(password string, iterations int) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	salt := make([]byte, passwordSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, passwordKeyLen)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	enc := base64.RawStdEncoding
	return passwordScheme + "$" + strconv.Itoa(iterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key), nil
}

// CheckPassword reports whether password matches hash (from HashPassword).
// A malformed or empty hash matches nothing.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != passwordScheme {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 100_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[2])
	if err != nil {
		return false
	}
	want, err := enc.DecodeString(parts[3])
	if err != nil || len(want) == 0 {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}
