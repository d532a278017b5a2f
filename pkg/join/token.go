package join

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
)

// A full token is K1<CA hash>::<secret>. The hash pins the server's CA, so an
// agent never sends its secret to a server it cannot verify.
const (
	tokenPrefix    = "K1"
	tokenSeparator = "::"
)

var (
	// hex64RE matches a SHA-256 in hex, and the main secret (pki.NewToken).
	hex64RE       = regexp.MustCompile(`^[0-9a-f]{64}$`)
	bootstrapRE   = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)
	bootstrapIDRE = regexp.MustCompile(`^[a-z0-9]{6}$`)
)

// tokenHelp ends every token error with what to do about it.
const tokenHelp = "copy the token again from the server's <data-dir>/server/token, or the bootstrap token you were given"

// Token is a parsed join token.
type Token struct {
	// CAHash is the hex SHA-256 of the server's CA bundle; empty for a bare
	// secret, whose CA the agent trusts on first use.
	CAHash string
	// Secret is the server's main secret or a bootstrap token <id>.<secret>.
	Secret string
}

// ParseToken parses a full token K1<hash>::<secret> or a bare secret. Surrounding
// white space, as left by copying from a file, is ignored.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, errors.New("the token is empty: " + tokenHelp)
	}
	t := Token{Secret: s}
	// A bare secret never starts with K: the main secret is lowercase hex.
	if rest, ok := strings.CutPrefix(s, tokenPrefix); ok {
		hash, secret, ok := strings.Cut(rest, tokenSeparator)
		if !ok {
			return Token{}, errors.New("invalid token: '::' must separate the CA hash from the secret; " + tokenHelp)
		}
		t = Token{CAHash: strings.ToLower(hash), Secret: secret}
		if !hex64RE.MatchString(t.CAHash) {
			return Token{}, errors.New("invalid token: the CA hash between K1 and :: must be 64 hexadecimal characters; " + tokenHelp)
		}
		if t.Secret == "" {
			return Token{}, errors.New("invalid token: nothing follows '::'; " + tokenHelp)
		}
	}
	if !hex64RE.MatchString(t.Secret) && !bootstrapRE.MatchString(t.Secret) {
		return Token{}, errors.New("invalid token: the secret is neither the server's 64-character hex secret nor a bootstrap token <6 of a-z0-9>.<16 of a-z0-9>; " + tokenHelp)
	}
	return t, nil
}

// Encode returns the token in the form ParseToken reads: the full form when
// it has a CA hash, the bare secret otherwise. It is not a String method, so
// that printing a Token by accident never shows its secret.
func (t Token) Encode() string {
	if t.CAHash == "" {
		return t.Secret
	}
	return tokenPrefix + t.CAHash + tokenSeparator + t.Secret
}

// BootstrapID returns the id of a bootstrap token, and false for the main
// secret.
func (t Token) BootstrapID() (string, bool) {
	id, _, ok := splitBootstrap(t.Secret)
	return id, ok
}

// FullToken composes the full token for secret (the main secret or a
// bootstrap token) and the server's CA bundle.
func FullToken(secret string, caBundle []byte) string {
	return Token{CAHash: CAHash(caBundle), Secret: secret}.Encode()
}

// CAHash is the hex SHA-256 of a CA bundle exactly as the server serves it.
func CAHash(caBundle []byte) string {
	sum := sha256.Sum256(caBundle)
	return hex.EncodeToString(sum[:])
}

func splitBootstrap(secret string) (id, tokenSecret string, ok bool) {
	m := bootstrapRE.FindStringSubmatch(secret)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
