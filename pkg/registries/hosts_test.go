package registries

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// example is a configuration with every kind of entry, its TLS files in
// the returned dir.
func example(t *testing.T) (*Config, string) {
	t.Helper()
	dir := t.TempDir()
	cert, key := testPKI(t, dir)
	c, err := Parse([]byte(`
mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com:5000", "http://10.0.0.1:5000/cache"]
  quay.io:
    endpoint: ["https://mirror.example.com:5000", "https://other.example.com"]
    rewrite:
      "^coreos/(.*)": "quay/coreos/$1"
  "*":
    endpoint: ["https://everything.example.com"]
configs:
  mirror.example.com:5000:
    auth: {username: u, password: p}
    tls: {ca_file: ` + cert + `, cert_file: ` + cert + `, key_file: ` + key + `}
  docker.io:
    tls: {ca_file: ` + cert + `}
  tls-only.example.com:
    tls: {insecure_skip_verify: true}
  auth-only.example.com:
    auth: {username: a, password: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

// TestHostsFiles: the hosts.toml of every registry, compared with
// testdata/hosts/<dir>.toml (TLS file paths shown as $DIR): mirrors in
// order before the registry itself, TLS where the endpoint's host has
// configs, rewriting mirrors through the proxy, the wildcard as _default.
func TestHostsFiles(t *testing.T) {
	c, dir := example(t)
	c.File = "/etc/kubox/registries.yaml"
	files := c.HostsFiles("http://127.0.0.1:40000", "s3cr3t")
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"_default", "docker.io", "mirror.example.com:5000", "quay.io", "tls-only.example.com"}; !slices.Equal(names, want) {
		t.Errorf("directories %v, want %v", names, want)
	}
	for _, n := range names {
		got := strings.ReplaceAll(string(files[n]), dir, "$DIR")
		// Module file names may not hold ':'.
		golden := filepath.Join("testdata", "hosts", strings.ReplaceAll(n, ":", "_")+".toml")
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs from %s:\n%s", n, golden, got)
		}
	}
	creds := c.Credentials()
	if len(creds) != 2 || creds["mirror.example.com:5000"].Username != "u" || creds["auth-only.example.com"].Password != "b" {
		t.Errorf("credentials %+v", creds)
	}
	if !c.NeedsProxy() || (&Config{}).NeedsProxy() {
		t.Errorf("NeedsProxy wrong")
	}
}

// TestCredentialsDockerHub: docker.io's credentials are sent to the host
// containerd pulls docker.io's images from.
func TestCredentialsDockerHub(t *testing.T) {
	c, err := Parse([]byte("configs:\n  docker.io:\n    auth: {username: a, password: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Credentials(); got[DockerHub].Username != "a" || got["docker.io"].Username != "a" {
		t.Errorf("credentials %+v", got)
	}
}

// TestWriteHosts: kubox's directories are replaced or removed; others stay.
func TestWriteHosts(t *testing.T) {
	dir := t.TempDir()
	c := &Config{File: "/r.yaml"}
	old := map[string][]byte{
		"stale.example.com": c.hostsFile(nil, "stale.example.com", nil, "", ""),
		"kept.example.com":  c.hostsFile(nil, "kept.example.com", nil, "", ""),
	}
	if _, err := WriteHosts(dir, old); err != nil {
		t.Fatal(err)
	}
	// The user's own directory, and a file.
	os.MkdirAll(filepath.Join(dir, "mine.example.com"), 0o700)
	os.WriteFile(filepath.Join(dir, "mine.example.com", "hosts.toml"), []byte("server = \"https://mine\"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "note"), []byte("x"), 0o600)

	c.File = "/new.yaml"
	removed, err := WriteHosts(dir, map[string][]byte{"kept.example.com": c.hostsFile(nil, "kept.example.com", nil, "", "")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"stale.example.com"}) {
		t.Errorf("removed %v", removed)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if !slices.Equal(left, []string{"kept.example.com", "mine.example.com", "note"}) {
		t.Errorf("left %v", left)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "kept.example.com", "hosts.toml"))
	if !strings.Contains(string(data), "/new.yaml") {
		t.Errorf("kept.example.com not rewritten:\n%s", data)
	}
	if st, _ := os.Stat(filepath.Join(dir, "kept.example.com", "hosts.toml")); st.Mode().Perm() != 0o600 {
		t.Errorf("hosts.toml mode %v", st.Mode())
	}
	// No file at all: kubox's directories go.
	if removed, err := WriteHosts(dir, (*Config)(nil).HostsFiles("", "")); err != nil || !slices.Equal(removed, []string{"kept.example.com"}) {
		t.Errorf("no configuration: removed %v, %v", removed, err)
	}
}

// TestContainerdReadsHosts: containerd's own reader of hosts directories
// (the one its CRI plugin uses with config_path) finds the mirrors in
// order, the registry itself last, and each host's TLS settings.
func TestContainerdReadsHosts(t *testing.T) {
	c, dir := example(t)
	hostsDir := filepath.Join(dir, "certs.d")
	if _, err := WriteHosts(hostsDir, c.HostsFiles("http://127.0.0.1:40000", "s3cr3t")); err != nil {
		t.Fatal(err)
	}
	hosts := config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(hostsDir)})
	pull := docker.HostCapabilityPull | docker.HostCapabilityResolve
	all := pull | docker.HostCapabilityPush | docker.HostCapabilityReferrers
	for _, c := range []struct {
		registry string
		want     []string // scheme://host/path capabilities
	}{
		{"docker.io", []string{
			fmt.Sprintf("https://mirror.example.com:5000/v2 %d", pull),
			fmt.Sprintf("http://10.0.0.1:5000/cache/v2 %d", pull),
			fmt.Sprintf("https://registry-1.docker.io/v2 %d", all)}},
		{"quay.io", []string{
			fmt.Sprintf("http://127.0.0.1:40000/0/v2 %d", pull),
			fmt.Sprintf("http://127.0.0.1:40000/1/v2 %d", pull),
			fmt.Sprintf("https://quay.io/v2 %d", all)}},
		{"ghcr.io", []string{
			fmt.Sprintf("https://everything.example.com/v2 %d", pull),
			fmt.Sprintf("https://ghcr.io/v2 %d", all)}},
		{"tls-only.example.com", []string{
			fmt.Sprintf("https://everything.example.com/v2 %d", pull),
			fmt.Sprintf("https://tls-only.example.com/v2 %d", all)}},
	} {
		got, err := hosts(c.registry)
		if err != nil {
			t.Fatalf("%s: %v", c.registry, err)
		}
		var desc []string
		for _, h := range got {
			desc = append(desc, fmt.Sprintf("%s://%s%s %d", h.Scheme, h.Host, h.Path, h.Capabilities))
		}
		if !slices.Equal(desc, c.want) {
			t.Errorf("%s: hosts\n%s\nwant\n%s", c.registry, strings.Join(desc, "\n"), strings.Join(c.want, "\n"))
		}
		tlsOf := func(i int) *tls.Config { return got[i].Client.Transport.(*http.Transport).TLSClientConfig }
		switch c.registry {
		case "docker.io":
			if tc := tlsOf(0); len(tc.Certificates) != 1 || tc.RootCAs == nil {
				t.Errorf("mirror.example.com:5000 has no client certificate or CA")
			}
			if tc := tlsOf(2); tc.RootCAs == nil || len(tc.Certificates) != 0 {
				t.Errorf("registry-1.docker.io lacks docker.io's CA")
			}
		case "quay.io":
			if h := got[0].Header.Get(SecretHeader); h != "s3cr3t" {
				t.Errorf("containerd sends the proxy %s %q", SecretHeader, h)
			}
		case "tls-only.example.com":
			if !tlsOf(1).InsecureSkipVerify {
				t.Errorf("tls-only.example.com verifies its certificate")
			}
		}
	}
}
