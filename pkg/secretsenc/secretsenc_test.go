package secretsenc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
)

func TestConfigFile(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, provider := range Providers {
		t.Run(provider, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cred", "encryption-config.yaml")
			c, err := Ensure(path, provider, now)
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("file mode: %v %v", fi.Mode(), err)
			}
			// The API server's own loader accepts it, for Secrets.
			loaded, err := encryptionconfig.LoadEncryptionConfig(context.Background(), path, false, "test")
			if err != nil {
				t.Fatalf("the API server refuses the file: %v", err)
			}
			if len(loaded.Transformers) == 0 {
				t.Fatal("the API server found no transformer in the file")
			}
			// Ensure keeps what exists, whatever provider it is asked for.
			again, err := Ensure(path, "secretbox", now.Add(time.Hour))
			if err != nil || again.Keys[0].Name != c.Keys[0].Name || again.Provider != provider {
				t.Fatalf("Ensure replaced the configuration: %+v %v", again, err)
			}
			next, k, err := Prepended(c, now.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(next.Keys) != 2 || next.Keys[0] != k || next.Keys[1] != c.Keys[0] || k.Name == c.Keys[0].Name {
				t.Fatalf("after Prepended: %+v", next.Keys)
			}
			if err := Write(path, next); err != nil {
				t.Fatal(err)
			}
			read, err := Read(path)
			if err != nil || len(read.Keys) != 2 || read.Keys[0] != k || read.Provider != provider {
				t.Fatalf("read back %+v, %v", read, err)
			}
		})
	}
	if err := CheckProvider("rot13"); err == nil {
		t.Error("rot13 accepted")
	}
}

func TestKeyOf(t *testing.T) {
	for in, want := range map[string][2]string{
		"k8s:enc:aescbc:v1:key-1:\x00\x01binary": {"aescbc", "key-1"},
		"k8s:enc:secretbox:v1:k2:data":           {"secretbox", "k2"},
		"k8s\x00\x01plain protobuf":              {"", ""},
		"k8s:enc:aescbc":                         {"", ""},
	} {
		p, k := KeyOf([]byte(in))
		if p != want[0] || k != want[1] {
			t.Errorf("KeyOf(%q) = %q, %q; want %q, %q", in, p, k, want[0], want[1])
		}
	}
}
