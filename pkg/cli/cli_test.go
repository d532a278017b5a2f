package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubox-io/kubox/pkg/pki"
)

// TestRefusals: a command line or config file the user got wrong ends in
// one line that says what to fix, a non-zero exit, and nothing written.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badKey, []byte("flanel-backend: host-gw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badProfile := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(badProfile, []byte("profile: CIS\nprotect-kernel-defaults: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	psaConfig := filepath.Join(dir, "psa-config.yaml")
	if err := os.WriteFile(psaConfig, []byte("pod-security-admission-config-file: "+empty+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"bad log format", []string{"server", "--config", empty, "-d", data, "--log-format", "logfmt"}, `invalid --log-format "logfmt": use text or json`},
		{"agent, bad log format", []string{"agent", "--config", empty, "-d", data, "--server", "https://10.0.0.1:6443", "--log-format", "JSON"}, `invalid --log-format "JSON": use text or json`},
		{"check-config, bad output", []string{"check-config", "-o", "yaml"}, `invalid --output "yaml"`},
		{"check-config, unknown requirement", []string{"check-config", "--require", "wg"}, `invalid --require "wg": choose from`},
		{"bad flannel backend, no node", []string{"server", "--config", empty, "-d", data, "--disable-agent", "--flannel-backend", "wireguard"}, `invalid --flannel-backend "wireguard"`},
		{"short node certificates", []string{"server", "--config", empty, "-d", data, "--node-cert-validity", "1s"}, "invalid --node-cert-validity 1s"},
		{"unknown add-on", []string{"server", "--config", empty, "-d", data, "--disable", "nonsense"}, `invalid --disable "nonsense": choose from coredns, local-storage, servicelb, metrics-server, helm-controller`},
		{"misspelt config key", []string{"server", "--config", badKey, "-d", data}, `unknown key "flanel-backend"`},
		{"agent without a server", []string{"agent", "--config", empty, "-d", data}, "no server to join"},
		{"agent with a bad token", []string{"agent", "--config", empty, "-d", data, "--server", "https://10.0.0.1:6443", "--token", "nonsense"}, "invalid token"},
		{"bad snapshot schedule", []string{"server", "--config", empty, "-d", data, "--snapshot-schedule-cron", "every day"}, `invalid --snapshot-schedule-cron "every day"`},
		{"reset without a snapshot", []string{"server", "--config", empty, "-d", data, "--cluster-reset"}, "--cluster-reset needs --cluster-reset-restore-path"},
		{"restore path without reset", []string{"server", "--config", empty, "-d", data, "--cluster-reset-restore-path", "/tmp/x"}, "needs --cluster-reset"},
		{"restore onto Postgres", []string{"server", "--config", empty, "-d", data, "--datastore-endpoint", "postgres://u@db/k", "--cluster-reset", "--cluster-reset-restore-path", "/tmp/x"}, "restore a postgres datastore with its own tools"},
		{"S3 without a bucket", []string{"server", "--config", empty, "-d", data, "--snapshot-s3"}, "--snapshot-s3 needs --snapshot-s3-bucket"},
		{"snapshot restore without a file", []string{"snapshot", "restore", "--config", empty, "-d", data}, "give the snapshot file to restore"},
		{"snapshot delete without a name", []string{"snapshot", "delete", "--config", empty, "-d", data}, "give the name of the snapshot to delete"},
		{"snapshot of Postgres", []string{"etcd-snapshot", "save", "--config", empty, "-d", data, "--datastore-endpoint", "postgres://u@db/k"}, "back up a postgres datastore with the database's own tools"},
		{"snapshot with a bad name", []string{"snapshot", "save", "--config", empty, "-d", data, "--name", "Not/OK"}, `invalid snapshot name "Not/OK"`},
		{"snapshot ls, bad output", []string{"snapshot", "ls", "--config", empty, "-d", data, "-o", "yaml"}, `invalid --output "yaml"`},
		{"certificate check, no data dir", []string{"certificate", "check", "--config", empty, "-d", data}, "no certificates in"},
		{"certificate check, bad output", []string{"certificate", "check", "--config", empty, "-d", data, "-o", "wide"}, `invalid --output "wide"`},
		{"certificate rotate, no CA", []string{"certificate", "rotate", "--config", empty, "-d", data}, "no cluster CA in"},
		{"rotate-ca without a path", []string{"certificate", "rotate-ca", "--config", empty, "-d", data}, "give the directory of the new CAs with --path"},
		{"rotate-ca, no CA", []string{"certificate", "rotate-ca", "--config", empty, "-d", data, "--path", dir}, "no cluster CA in"},
		{"bad secrets encryption provider", []string{"server", "--config", empty, "-d", data, "--secrets-encryption", "--secrets-encryption-provider", "rot13"}, `invalid --secrets-encryption-provider "rot13"`},
		{"audit policy without a log", []string{"server", "--config", empty, "-d", data, "--audit-policy-file", "/etc/hosts"}, "--audit-policy-file needs --audit-log-path"},
		{"negative audit log size", []string{"server", "--config", empty, "-d", data, "--audit-log-path", filepath.Join(dir, "a.log"), "--audit-log-maxsize", "-1"}, "invalid --audit-log-maxsize -1"},
		{"unknown profile", []string{"server", "--config", empty, "-d", data, "--profile", "cis-1.23"}, `invalid --profile "cis-1.23": choose from cis`},
		{"agent, unknown profile", []string{"agent", "--config", empty, "-d", data, "--server", "https://10.0.0.1:6443", "--node-ip", "10.0.0.2", "--profile", "hardened"}, `invalid --profile "hardened"`},
		{"profile from the config file", []string{"server", "--config", badProfile, "-d", data}, `invalid --profile "CIS"`},
		{"missing pod security file", []string{"server", "--config", empty, "-d", data, "--pod-security-admission-config-file", filepath.Join(dir, "psa.yaml")}, "invalid --pod-security-admission-config-file " + filepath.Join(dir, "psa.yaml") + ": no such file"},
		{"pod security file from the config file", []string{"server", "--config", psaConfig, "-d", data}, "invalid --pod-security-admission-config-file " + empty + ": kind \"\""},
		{"agent's first join without a token", []string{"agent", "--config", empty, "-d", data, "--server", "https://10.0.0.1:6443", "--node-ip", "10.0.0.2"}, "no join token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"kubox"}, c.args...), &stdout, &stderr)
			out := stderr.String()
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, stderr %q; want a non-zero exit saying %q", code, out, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1 {
				t.Errorf("%d lines on stderr, want one:\n%s", lines, out)
			}
		})
	}
	if _, err := os.Stat(data); err == nil {
		t.Errorf("a refused command wrote %s", data)
	}
}

// TestCertificateCheckReadsConfig: the data dir may come from the server's
// config file alone, as an installed service's does.
func TestCertificateCheckReadsConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, _, err := pki.EnsureControlPlane(filepath.Join(data, "server", "tls"), pki.SANs{DNSNames: []string{"kubernetes"}}, 0, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("data-dir: "+data+"\ncluster-cidr: 10.42.0.0/16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"kubox", "certificate", "check", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "serving-kube-apiserver") || !strings.Contains(stdout.String(), "364") {
		t.Fatalf("certificate check printed:\n%s", stdout.String())
	}
}

// TestRotateCARefusals: kubox certificate rotate-ca refuses, in one line
// naming the file at fault, a --path it cannot use, and changes nothing.
func TestRotateCARefusals(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tlsDir := filepath.Join(data, "server", "tls")
	cp, _, err := pki.EnsureControlPlane(tlsDir, pki.SANs{DNSNames: []string{"kubernetes"}}, 0, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cas, err := pki.LoadCAs(cp)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// newCAs writes a directory with the given files.
	newCAs := func(name string, files map[string][]byte) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for f, b := range files {
			if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	crossed, key, err := pki.NewCrossSignedCA(cas[0], "new-server-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := pki.NewCrossSignedCA(cas[0], "other", time.Now())
	selfOnly, _, _ := strings.Cut(string(crossed), "-----END CERTIFICATE-----")
	selfOnly += "-----END CERTIFICATE-----\n"
	leaf, _ := os.ReadFile(cp.AdminCert)
	leafKey, _ := os.ReadFile(cp.AdminKey)

	before := map[string][]byte{}
	entries, _ := os.ReadDir(tlsDir)
	for _, e := range entries {
		before[e.Name()], _ = os.ReadFile(filepath.Join(tlsDir, e.Name()))
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"wrong path", filepath.Join(dir, "nowhere"), "--path " + filepath.Join(dir, "nowhere") + ": no such file or directory"},
		{"nothing in it", newCAs("empty", nil), "holds no new CA"},
		{"not cross-signed", newCAs("self", map[string][]byte{"server-ca.crt": []byte(selfOnly), "server-ca.key": key}), "server-ca.crt is not cross-signed by the current server CA"},
		{"key does not match", newCAs("mismatch", map[string][]byte{"server-ca.crt": crossed, "server-ca.key": otherKey}), "server-ca.key does not match the certificate"},
		{"not a CA", newCAs("leaf", map[string][]byte{"client-ca.crt": leaf, "client-ca.key": leafKey}), "client-ca.crt is not a CA certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"kubox", "certificate", "rotate-ca", "--config", empty, "-d", data, "--path", c.path}, &stdout, &stderr)
			out := stderr.String()
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, stderr %q; want a non-zero exit saying %q", code, out, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1 {
				t.Errorf("%d lines on stderr, want one:\n%s", lines, out)
			}
		})
	}
	entries, _ = os.ReadDir(tlsDir)
	if len(entries) != len(before) {
		t.Errorf("refusals left %d files in %s, there were %d", len(entries), tlsDir, len(before))
	}
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(tlsDir, e.Name())); !bytes.Equal(b, before[e.Name()]) {
			t.Errorf("a refusal changed %s", e.Name())
		}
	}
}

// TestRotateCA: with a cross-signed CA in --path, rotate-ca replaces it,
// makes the admin kubeconfig trust it, and ends saying to restart.
func TestRotateCA(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cp, _, err := pki.EnsureControlPlane(filepath.Join(data, "server", "tls"), pki.SANs{DNSNames: []string{"kubernetes"}}, 0, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubox.yaml")
	oldCA, _ := os.ReadFile(cp.ServerCA)
	if err := pki.WriteKubeconfig(kubeconfig, "https://127.0.0.1:6443", oldCA, cp.AdminCert, cp.AdminKey, 0o600); err != nil {
		t.Fatal(err)
	}
	cas, err := pki.LoadCAs(cp)
	if err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(dir, "new")
	os.MkdirAll(newDir, 0o700)
	certPEM, keyPEM, err := pki.NewCrossSignedCA(cas[0], "new-server-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(newDir, "server-ca.crt"), certPEM, 0o600)
	os.WriteFile(filepath.Join(newDir, "server-ca.key"), keyPEM, 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"kubox", "certificate", "rotate-ca", "--config", empty, "-d", data, "-o", kubeconfig, "--path", newDir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := strings.TrimSpace(stdout.String())
	if lines := strings.Split(out, "\n"); !strings.HasPrefix(lines[len(lines)-1], "restart kubox on this server to finish") {
		t.Errorf("the last line does not say to restart the server:\n%s", out)
	}
	newCA, _ := os.ReadFile(cp.ServerCA)
	if !bytes.HasPrefix(newCA, certPEM[:len(certPEM)/4]) {
		t.Error("server-ca.crt does not start with the new CA")
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clusters["default"].CertificateAuthorityData; !bytes.Equal(got, newCA) {
		t.Error("the admin kubeconfig does not trust the new CA bundle")
	}
}
