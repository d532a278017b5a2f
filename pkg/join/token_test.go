package join

import (
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	secret := strings.Repeat("0f", 32)
	for _, c := range []struct {
		name, in string
		want     Token
		err      string // part of the error; "" for none
	}{
		{"full", "K1" + hash + "::" + secret, Token{CAHash: hash, Secret: secret}, ""},
		{"full with newline", "K1" + hash + "::" + secret + "\n", Token{CAHash: hash, Secret: secret}, ""},
		{"upper-case hash", "K1" + strings.ToUpper(hash) + "::" + secret, Token{CAHash: hash, Secret: secret}, ""},
		{"full bootstrap", "K1" + hash + "::abcdef.0123456789abcdef", Token{CAHash: hash, Secret: "abcdef.0123456789abcdef"}, ""},
		{"bare secret", secret, Token{Secret: secret}, ""},
		{"bare bootstrap", "abcdef.0123456789abcdef", Token{Secret: "abcdef.0123456789abcdef"}, ""},
		{"empty", " \n", Token{}, "the token is empty"},
		{"no separator", "K1" + hash + secret, Token{}, "'::' must separate"},
		{"short hash", "K1abc::" + secret, Token{}, "CA hash between K1 and :: must be 64 hexadecimal"},
		{"hash not hex", "K1" + strings.Repeat("zz", 32) + "::" + secret, Token{}, "CA hash"},
		{"no secret", "K1" + hash + "::", Token{}, "nothing follows '::'"},
		{"short secret", "K1" + hash + "::abc", Token{}, "neither the server's 64-character hex secret nor a bootstrap token"},
		{"upper-case bootstrap", "ABCDEF.0123456789ABCDEF", Token{}, "neither"},
		{"bootstrap id too long", "abcdefg.0123456789abcdef", Token{}, "neither"},
		{"k3s form", "K10" + hash + "::server:" + secret, Token{}, "CA hash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseToken(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseToken(%q) error = %v, want one containing %q", c.in, err, c.err)
				}
				if !strings.Contains(err.Error(), "<data-dir>/server/token") {
					t.Errorf("error %q does not say where the token comes from", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToken(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("ParseToken(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if again, err := ParseToken(got.Encode()); err != nil || again != got {
				t.Fatalf("ParseToken(Encode()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestFullTokenAndBootstrapID(t *testing.T) {
	bundle := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	secret := strings.Repeat("1", 64)
	full := FullToken(secret, bundle)
	tok, err := ParseToken(full)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != CAHash(bundle) || tok.Secret != secret {
		t.Fatalf("FullToken round trip = %+v", tok)
	}
	// The well-known SHA-256 of "abc".
	if got := CAHash([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("CAHash(abc) = %s", got)
	}
	if id, ok := tok.BootstrapID(); ok {
		t.Fatalf("main secret has bootstrap id %q", id)
	}
	if id, ok := (Token{Secret: "abcdef.0123456789abcdef"}).BootstrapID(); !ok || id != "abcdef" {
		t.Fatalf("BootstrapID = %q, %v", id, ok)
	}
}
