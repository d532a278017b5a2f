package pki

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// NewToken returns a strong random secret: 32 random bytes, hex-encoded.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// EnsureToken returns the token stored at path, or, if the file does not
// exist, generates one and writes it there (mode 0600, atomically). An
// existing file must hold a non-empty token: silently replacing it would lock
// out every node that joined with the old one.
func EnsureToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		token := strings.TrimSpace(string(data))
		if token == "" {
			return "", fmt.Errorf("token file %s is empty", path)
		}
		return token, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading token %s: %w", path, err)
	}
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	if err := WriteToken(path, token); err != nil {
		return "", err
	}
	return token, nil
}

// WriteToken replaces the token stored at path (mode 0600, atomically), for
// callers that change the token's form but keep its secret.
func WriteToken(path, token string) error {
	token = strings.TrimSpace(token)
	if token == "" {
		return fmt.Errorf("refusing to write an empty token to %s", path)
	}
	if err := atomicfile.Write(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing token %s: %w", path, err)
	}
	return nil
}
