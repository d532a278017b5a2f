package secretsenc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
			loads(t, path)
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

// TestSteps: enable, prepare, rotate and disable as the files say them,
// each accepted by the API server's own loader.
func TestSteps(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(t.TempDir(), "encryption-config.yaml")
	if _, err := Disable(path); err == nil || !strings.Contains(err.Error(), "not enabled") {
		t.Fatalf("disable with no configuration: %v", err)
	}
	c, restart, err := Enable(path, "aescbc", now)
	if err != nil || !restart || len(c.Keys) != 1 || c.Stage() != StageStart {
		t.Fatalf("first enable: %+v restart=%v %v", c, restart, err)
	}
	first := c.Keys[0]
	if _, _, err := Rotate(c); err == nil || !strings.Contains(err.Error(), "run kubox secrets-encrypt prepare first") {
		t.Fatalf("rotate with nothing prepared: %v", err)
	}
	c, prepared, err := Prepare(c, now.Add(time.Minute))
	if err != nil || c.Stage() != StagePrepare || c.Keys[0] != first || c.Keys[1] != prepared {
		t.Fatalf("prepare: %+v %v", c, err)
	}
	if _, _, err := Prepare(c, now.Add(2*time.Minute)); err == nil || !strings.Contains(err.Error(), "prepared already") {
		t.Fatalf("second prepare: %v", err)
	}
	c, rotated, err := Rotate(c)
	if err != nil || rotated != prepared || c.Keys[0] != prepared || c.Keys[1] != first || c.Stage() != StageRotate {
		t.Fatalf("rotate: %+v %v", c, err)
	}
	if err := Write(path, c); err != nil {
		t.Fatal(err)
	}
	loads(t, path)
	d, err := Disable(path)
	if err != nil || !d.Disabled {
		t.Fatalf("disable: %+v %v", d, err)
	}
	loads(t, path)
	if back, err := Read(path); err != nil || !back.Disabled || len(back.Keys) != 2 || back.Keys[0] != prepared {
		t.Fatalf("disabled configuration read back as %+v, %v", back, err)
	}
	e, restart, err := Enable(path, "secretbox", now)
	if err != nil || restart || e.Disabled || e.Provider != "aescbc" || e.Keys[0] != prepared {
		t.Fatalf("enable again: %+v restart=%v %v", e, restart, err)
	}
}

// loads checks the API server reads path with a transformer for Secrets.
func loads(t *testing.T, path string) {
	t.Helper()
	loaded, err := encryptionconfig.LoadEncryptionConfig(context.Background(), path, false, "test")
	if err != nil || len(loaded.Transformers) == 0 {
		t.Fatalf("the API server refuses %s: %v", path, err)
	}
}
