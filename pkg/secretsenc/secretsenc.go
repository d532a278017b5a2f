// Package secretsenc keeps Secrets encrypted at rest: it owns the API
// server's encryption configuration file (aescbc or secretbox keys, 0600
// under the data dir), adds and retires keys, and reads how the stored
// Secrets are encrypted.
package secretsenc

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// Providers kubox can write keys for.
var Providers = []string{"aescbc", "secretbox"}

// Key is one encryption key; the first in a Config encrypts, all decrypt.
type Key struct {
	Name   string `json:"name"`
	Secret string `json:"secret"` // base64 of 32 random bytes
}

// Config is the part of the API server's EncryptionConfiguration kubox
// writes: one provider with its keys for Secrets, then identity, so that
// Secrets written before encryption was enabled stay readable.
type Config struct {
	Provider string
	Keys     []Key
	// Disabled puts identity first: Secrets are written in plain text
	// while the keys still read those they encrypted.
	Disabled bool
}

// file mirrors apiserver.config.k8s.io/v1 EncryptionConfiguration.
type file struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Resources  []resource `json:"resources"`
}

type resource struct {
	Resources []string   `json:"resources"`
	Providers []provider `json:"providers"`
}

type provider struct {
	AESCBC    *keys     `json:"aescbc,omitempty"`
	Secretbox *keys     `json:"secretbox,omitempty"`
	Identity  *struct{} `json:"identity,omitempty"`
}

type keys struct {
	Keys []Key `json:"keys"`
}

// CheckProvider refuses a provider kubox does not write.
func CheckProvider(p string) error {
	for _, known := range Providers {
		if p == known {
			return nil
		}
	}
	return fmt.Errorf("invalid --secrets-encryption-provider %q: choose from %s", p, strings.Join(Providers, ", "))
}

// Read loads the configuration at path.
func Read(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var f file
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return Config{}, fmt.Errorf("encryption configuration %s: %w", path, err)
	}
	if len(f.Resources) != 1 || len(f.Resources[0].Providers) == 0 {
		return Config{}, fmt.Errorf("encryption configuration %s: not one kubox wrote (one resource list with providers expected)", path)
	}
	ps := f.Resources[0].Providers
	disabled := ps[0].Identity != nil && len(ps) > 1
	if disabled {
		ps = ps[1:]
	}
	switch p := ps[0]; {
	case p.AESCBC != nil:
		return Config{Provider: "aescbc", Keys: p.AESCBC.Keys, Disabled: disabled}, nil
	case p.Secretbox != nil:
		return Config{Provider: "secretbox", Keys: p.Secretbox.Keys, Disabled: disabled}, nil
	}
	return Config{}, fmt.Errorf("encryption configuration %s: its first provider is neither aescbc nor secretbox", path)
}

// Write replaces the configuration at path (0600, atomically).
func Write(path string, c Config) error {
	if len(c.Keys) == 0 {
		return errors.New("an encryption configuration needs at least one key")
	}
	k := &keys{Keys: c.Keys}
	first := provider{}
	switch c.Provider {
	case "aescbc":
		first.AESCBC = k
	case "secretbox":
		first.Secretbox = k
	default:
		return CheckProvider(c.Provider)
	}
	f := file{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration", Resources: []resource{{
		Resources: []string{"secrets"},
		Providers: []provider{first, {Identity: &struct{}{}}},
	}}}
	if c.Disabled {
		f.Resources[0].Providers = []provider{{Identity: &struct{}{}}, first}
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// NewKey makes a key named after now.
func NewKey(now time.Time) (Key, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Key{}, err
	}
	return Key{Name: fmt.Sprintf("key-%d", now.UnixNano()), Secret: base64.StdEncoding.EncodeToString(b)}, nil
}

// Ensure creates the configuration with one key of provider if there is
// none. An existing one is kept as it is, whatever the provider: changing
// it is a key rotation (Rotate), which re-encrypts.
func Ensure(path, provider string, now time.Time) (Config, error) {
	c, err := Read(path)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Config{}, err
	}
	k, err := NewKey(now)
	if err != nil {
		return Config{}, err
	}
	c = Config{Provider: provider, Keys: []Key{k}}
	return c, Write(path, c)
}

// Prepended is c with a new key first: it encrypts from now on, and every
// older key still decrypts.
func Prepended(c Config, now time.Time) (Config, Key, error) {
	k, err := NewKey(now)
	if err != nil {
		return c, Key{}, err
	}
	return Config{Provider: c.Provider, Keys: append([]Key{k}, c.Keys...)}, k, nil
}

// Prefix is how the API server marks a value encrypted with key of provider.
func Prefix(provider, key string) []byte {
	return []byte("k8s:enc:" + provider + ":v1:" + key + ":")
}

// KeyOf names the key a stored value was encrypted with ("" if plain).
func KeyOf(value []byte) (provider, key string) {
	if !bytes.HasPrefix(value, []byte("k8s:enc:")) {
		return "", ""
	}
	parts := strings.SplitN(string(value), ":", 6)
	if len(parts) < 6 {
		return "", ""
	}
	return parts[2], parts[4]
}
