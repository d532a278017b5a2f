package secretsenc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The stages of a key rotation done step by step, named as k3s's
// secrets-encrypt names them: prepare adds a key that only decrypts (so
// every server can read what it will encrypt), rotate makes it the one that
// encrypts, reencrypt moves every Secret to it and retires the keys nothing
// is encrypted with any more.
const (
	StageStart   = "start"   // one key, or none pending
	StagePrepare = "prepare" // a newer key waits behind the one that encrypts
	StageRotate  = "rotate"  // the newest key encrypts; older ones wait for reencrypt
)

// created is when a key was made, from its name (key-<unix nanoseconds>);
// a key named otherwise counts as the oldest.
func (k Key) created() int64 {
	n, err := strconv.ParseInt(strings.TrimPrefix(k.Name, "key-"), 10, 64)
	if err != nil || !strings.HasPrefix(k.Name, "key-") {
		return 0
	}
	return n
}

// prepared is the index of the newest key behind the first that is newer
// than the first, or -1.
func (c Config) prepared() int {
	at := -1
	for i := 1; i < len(c.Keys); i++ {
		if c.Keys[i].created() > c.Keys[0].created() && (at < 0 || c.Keys[i].created() > c.Keys[at].created()) {
			at = i
		}
	}
	return at
}

// Stage says where a step-by-step rotation stands.
func (c Config) Stage() string {
	switch {
	case c.prepared() >= 0:
		return StagePrepare
	case len(c.Keys) > 1:
		return StageRotate
	}
	return StageStart
}

// Prepare adds a new key behind the others: it decrypts but does not yet
// encrypt.
func Prepare(c Config, now time.Time) (Config, Key, error) {
	if i := c.prepared(); i >= 0 {
		return c, Key{}, fmt.Errorf("key %s is prepared already: run kubox secrets-encrypt rotate", c.Keys[i].Name)
	}
	k, err := NewKey(now)
	if err != nil {
		return c, Key{}, err
	}
	c.Keys = append(append([]Key{}, c.Keys...), k)
	return c, k, nil
}

// Rotate makes the prepared key the one that encrypts; the others still
// decrypt until reencrypt retires them.
func Rotate(c Config) (Config, Key, error) {
	i := c.prepared()
	if i < 0 {
		return c, Key{}, errors.New("no prepared key: run kubox secrets-encrypt prepare first")
	}
	k := c.Keys[i]
	keys := []Key{k}
	for j, other := range c.Keys {
		if j != i {
			keys = append(keys, other)
		}
	}
	c.Keys = keys
	return c, k, nil
}

// Enable turns encryption on in the configuration at path. With no
// configuration it writes one with a key of provider; the API server reads
// a new configuration only when it starts (restart is then true). One that
// was disabled encrypts again once the API server reloads it.
func Enable(path, provider string, now time.Time) (c Config, restart bool, err error) {
	if c, err = Read(path); errors.Is(err, os.ErrNotExist) {
		c, err = Ensure(path, provider, now)
		return c, true, err
	} else if err != nil {
		return c, false, err
	}
	if c.Disabled {
		c.Disabled = false
		err = Write(path, c)
	}
	return c, false, err
}

// Disable has the API server write Secrets in plain text again; the keys
// stay, to read what they encrypted.
func Disable(path string) (Config, error) {
	c, err := Read(path)
	if err != nil {
		return c, notEnabled(err)
	}
	if !c.Disabled {
		c.Disabled = true
		err = Write(path, c)
	}
	return c, err
}

func notEnabled(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("secrets encryption is not enabled: run kubox secrets-encrypt enable, or start the server with --secrets-encryption")
	}
	return err
}
