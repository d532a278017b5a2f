package integration

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dbHolds says whether the SQLite database (file and write-ahead log)
// holds marker anywhere in its bytes.
func dbHolds(t *testing.T, s *server, marker string) bool {
	t.Helper()
	found := false
	for _, f := range []string{"state.db", "state.db-wal"} {
		data, err := os.ReadFile(filepath.Join(s.DataDir, "server", "db", f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		found = found || bytes.Contains(data, []byte(marker))
	}
	return found
}

// TestSecretsEncryption: without --secrets-encryption a Secret's value is
// in the database file as written; with it, it is not, and rotate-keys
// moves every Secret to a new key while the server serves. Step by step,
// disable and enable with reencrypt store the Secrets in plain text and
// encrypted again, and prepare, rotate and reencrypt replace the key.
func TestSecretsEncryption(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	plain := newServer(t)
	plain.StartReady()
	plain.MustKubectl("create", "secret", "generic", "s", "--from-literal=v=kubox-marker-plain-7f3a")
	if !dbHolds(t, plain, "kubox-marker-plain-7f3a") {
		t.Fatal("without encryption the secret's value is not in the database: the check cannot see anything")
	}
	plain.Stop()

	s := newServer(t, "--secrets-encryption")
	s.StartReady()
	s.MustKubectl("create", "secret", "generic", "s", "--from-literal=v=kubox-marker-sealed-9c1e")
	if dbHolds(t, s, "kubox-marker-sealed-9c1e") {
		t.Fatal("with --secrets-encryption the secret's value is in the database in plain text")
	}
	enc := func(args ...string) string {
		t.Helper()
		out, err := run(s.bin, append(append([]string{"secrets-encrypt"}, args...), "--config", s.ConfigFile, "--data-dir", s.DataDir), nil)
		if err != nil {
			t.Fatalf("kubox secrets-encrypt %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	status := enc("status")
	first := regexp.MustCompile(`Key: (\S+) \(encrypts\)`).FindStringSubmatch(status)
	if !strings.Contains(status, "Provider: aescbc") || first == nil || strings.Contains(status, "not encrypted") {
		t.Fatalf("secrets-encrypt status:\n%s", status)
	}

	out := enc("rotate-keys")
	if !strings.Contains(out, "every secret is encrypted with") {
		t.Fatalf("rotate-keys said:\n%s", out)
	}
	status = enc("status")
	if strings.Contains(status, first[1]) || strings.Count(status, "Key: ") != 1 || strings.Contains(status, "not encrypted") {
		t.Fatalf("after rotate-keys, status still names the old key or plain secrets:\n%s", status)
	}
	v, err := s.Kubectl("get", "secret", "s", "-o", "jsonpath={.data.v}")
	if err != nil {
		t.Fatal(err)
	}
	if dec, _ := base64.StdEncoding.DecodeString(v); string(dec) != "kubox-marker-sealed-9c1e" {
		t.Fatalf("the secret reads back as %q after rotate-keys", dec)
	}

	enc("disable")
	enc("reencrypt")
	s.MustKubectl("create", "secret", "generic", "s2", "--from-literal=v=kubox-marker-open-51d0")
	if !dbHolds(t, s, "kubox-marker-open-51d0") {
		t.Fatal("after disable and reencrypt, a new secret's value is not in the database as written")
	}
	if status = enc("status"); !strings.Contains(status, "Encryption: disabled") || regexp.MustCompile(`Secrets key-`).MatchString(status) {
		t.Fatalf("after disable and reencrypt, a secret is still encrypted:\n%s", status)
	}
	enc("enable")
	enc("reencrypt")
	s.MustKubectl("create", "secret", "generic", "s3", "--from-literal=v=kubox-marker-shut-77b2")
	if dbHolds(t, s, "kubox-marker-shut-77b2") {
		t.Fatal("after enable and reencrypt, a new secret's value is in the database in plain text")
	}
	if status = enc("status"); !strings.Contains(status, "Encryption: enabled") || strings.Contains(status, "not encrypted") {
		t.Fatalf("after enable and reencrypt, a secret is not encrypted:\n%s", status)
	}

	prepared := regexp.MustCompile(`prepared key (\S+):`).FindStringSubmatch(enc("prepare"))
	if prepared == nil || !strings.Contains(enc("status"), "Stage: prepare") {
		t.Fatalf("prepare named no key, or status does not say so")
	}
	enc("rotate")
	if status = enc("status"); !strings.Contains(status, "Stage: rotate") || !strings.Contains(status, "Key: "+prepared[1]+" (encrypts)") {
		t.Fatalf("after rotate:\n%s", status)
	}
	enc("reencrypt")
	status = enc("status")
	if !strings.Contains(status, "Stage: start") || strings.Count(status, "Key: ") != 1 || !strings.Contains(status, "Secrets "+prepared[1]+": ") || strings.Contains(status, "not encrypted") {
		t.Fatalf("after reencrypt, not every secret is under the prepared key alone:\n%s", status)
	}
	for name, want := range map[string]string{"s": "kubox-marker-sealed-9c1e", "s2": "kubox-marker-open-51d0", "s3": "kubox-marker-shut-77b2"} {
		v, err := s.Kubectl("get", "secret", name, "-o", "jsonpath={.data.v}")
		if dec, _ := base64.StdEncoding.DecodeString(v); err != nil || string(dec) != want {
			t.Errorf("secret %s reads back as %q (%v)", name, dec, err)
		}
	}
}
