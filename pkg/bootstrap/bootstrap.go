// Package bootstrap keeps the files every server of a cluster shares (its
// CAs and keys, the service-account key, the encryption configuration and
// the token) in the cluster's datastore, sealed with a key derived from the
// server token: a server started on the same datastore with the same token
// takes the cluster's identity from there instead of making its own.
package bootstrap

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Store holds one sealed record.
type Store interface {
	// Get returns the record and its revision; revision 0 when there is none.
	Get(ctx context.Context) ([]byte, int64, error)
	// Put stores data if the record is still at revision rev (0: absent),
	// and reports false when another server changed it first.
	Put(ctx context.Context, data []byte, rev int64) (bool, error)
}

// File is one shared file's content and when it last changed.
type File struct {
	Content []byte    `json:"content"`
	ModTime time.Time `json:"modTime"`
}

// ErrWrongToken means the record was sealed with another server token.
var ErrWrongToken = errors.New("the record was sealed with another server token")

// magic starts every sealed record, so that its format can change.
const magic = "kubox-bootstrap-v1\n"

const saltSize = 16

// key derives the record's AES-256 key from the token's secret. The secret
// is 32 random bytes (the server token's form), so one HKDF step suffices.
func key(secret string, salt []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(secret), salt, "kubox bootstrap record", 32)
}

func aead(secret string, salt []byte) (cipher.AEAD, error) {
	k, err := key(secret, salt)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts files with a key derived from secret.
func Seal(secret string, files map[string]File) ([]byte, error) {
	plain, err := json.Marshal(files)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	g, err := aead(secret, salt)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte(magic), salt...)
	out = append(out, nonce...)
	return g.Seal(out, nonce, plain, []byte(magic)), nil
}

// Open decrypts a record Seal made; ErrWrongToken when secret is not the
// one it was sealed with.
func Open(secret string, record []byte) (map[string]File, error) {
	rest, ok := cutPrefix(record, magic)
	if !ok || len(rest) < saltSize {
		return nil, errors.New("the stored bootstrap record is not one kubox wrote")
	}
	salt, rest := rest[:saltSize], rest[saltSize:]
	g, err := aead(secret, salt)
	if err != nil {
		return nil, err
	}
	if len(rest) < g.NonceSize() {
		return nil, errors.New("the stored bootstrap record is truncated")
	}
	plain, err := g.Open(nil, rest[:g.NonceSize()], rest[g.NonceSize():], []byte(magic))
	if err != nil {
		return nil, ErrWrongToken
	}
	var files map[string]File
	if err := json.Unmarshal(plain, &files); err != nil {
		return nil, fmt.Errorf("the stored bootstrap record is damaged: %w", err)
	}
	return files, nil
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return nil, false
	}
	return b[len(p):], true
}
