package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

func TestTokenSecret(t *testing.T) {
	secret, other := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	hash := strings.Repeat("0", 64)
	for _, c := range []struct {
		name, file, token, want, err string
	}{
		{name: "neither"},
		{name: "file only", file: "K1" + hash + "::" + secret, want: secret},
		{name: "token only", token: secret, want: secret},
		{name: "full token", token: "K1" + hash + "::" + secret, want: secret},
		{name: "same in both", file: "K1" + hash + "::" + secret, token: secret, want: secret},
		{name: "differs from file", file: secret, token: other, err: "--token is not this server's token"},
		{name: "bootstrap token", token: "abcdef.0123456789abcdef", err: "bootstrap token"},
		{name: "malformed", token: "not a token", err: "--token: invalid token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := paths.New(filepath.Join(dir, "data"), filepath.Join(dir, "etc"), filepath.Join(dir, "run"))
			if c.file != "" {
				os.MkdirAll(filepath.Dir(p.TokenFile), 0o700)
				if err := os.WriteFile(p.TokenFile, []byte(c.file+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := &Server{cfg: &config.Server{Paths: p, Token: c.token}}
			got, err := s.tokenSecret()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("tokenSecret: %q, %v; want an error saying %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("tokenSecret = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
