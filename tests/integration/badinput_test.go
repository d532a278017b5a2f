package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadInput: every mistake a user can make ends in one clear line
// on stderr, a non-zero exit, and no existing data touched.
func TestBadInput(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	type tc struct {
		name  string
		setup func(t *testing.T, s *server) // may change s.Args or files
		want  []string                      // substrings of the last line
		check func(t *testing.T, s *server) // after the run
	}
	cases := []tc{
		{
			name: "port in use",
			setup: func(t *testing.T, s *server) {
				ln, err := net.Listen("tcp", fmt.Sprintf(":%d", s.Port))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
			},
			want: []string{"port", "already in use", "--https-listen-port"},
		},
		{
			name: "unwritable data dir",
			setup: func(t *testing.T, s *server) {
				file := filepath.Join(s.Dir, "a-file")
				os.WriteFile(file, []byte("x"), 0o600)
				s.DataDir = filepath.Join(file, "data")
			},
			want: []string{"--data-dir", "not a directory", "writable"},
		},
		{
			name: "unreachable datastore",
			setup: func(t *testing.T, s *server) {
				s.Args = append(s.Args, "--datastore-endpoint", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
			},
			want: []string{"cannot reach etcd", "--datastore-endpoint"},
		},
		{
			name: "corrupt sqlite",
			setup: func(t *testing.T, s *server) {
				os.MkdirAll(filepath.Join(s.DataDir, "server", "db"), 0o700)
				os.WriteFile(filepath.Join(s.DataDir, "server", "db", "state.db"), bytes.Repeat([]byte("not a database "), 500), 0o600)
			},
			want: []string{"state.db", "corrupt", "untouched"},
			check: func(t *testing.T, s *server) {
				got, _ := os.ReadFile(filepath.Join(s.DataDir, "server", "db", "state.db"))
				if sha256.Sum256(got) != sha256.Sum256(bytes.Repeat([]byte("not a database "), 500)) {
					t.Errorf("the corrupt database file was modified")
				}
				if _, err := os.Stat(filepath.Join(s.DataDir, "server", "db", "state.db-wal")); err == nil {
					t.Errorf("a WAL file was created next to the corrupt database")
				}
			},
		},
		{
			// This project's machine has no WireGuard in its kernel; a
			// host that has it would start a node, so the case is skipped.
			name: "wireguard backend without the kernel's wireguard",
			setup: func(t *testing.T, s *server) {
				if _, err := run(s.bin, []string{"check-config", "--require", "wireguard"}, nil); err == nil {
					t.Skip("this host's kernel has WireGuard")
				}
				s.Args = []string{"--flannel-backend", "wireguard-native", "--run-dir", filepath.Join(s.Dir, "run")}
			},
			want: []string{"--flannel-backend wireguard-native", "wireguard", "CONFIG_WIREGUARD", "another --flannel-backend"},
			check: func(t *testing.T, s *server) {
				nothingCreated(t, s)
				if out, err := run("ip", []string{"link", "show", "flannel-wg"}, nil); err == nil {
					t.Errorf("interface flannel-wg exists:\n%s", out)
				}
			},
		},
		{
			name:  "malformed registries.yaml",
			setup: func(t *testing.T, s *server) { nodeWithRegistries(t, s, "mirrors: [docker.io\n") },
			want:  []string{"registries.yaml ", "not valid YAML", "line 1"},
			check: nothingCreated,
		},
		{
			name: "unknown registries.yaml key",
			setup: func(t *testing.T, s *server) {
				nodeWithRegistries(t, s, "mirrors:\n  docker.io:\n    endpoints: [\"https://mirror.example.com\"]\n")
			},
			want:  []string{"registries.yaml ", `unknown key "mirrors.docker.io.endpoints"`, "known here: endpoint, rewrite"},
			check: nothingCreated,
		},
		{
			name: "missing registries.yaml",
			setup: func(t *testing.T, s *server) {
				s.Args = []string{"--private-registry", filepath.Join(s.Dir, "nope.yaml"), "--run-dir", filepath.Join(s.Dir, "run")}
			},
			want:  []string{"nope.yaml", "no such file", "--private-registry"},
			check: nothingCreated,
		},
		{
			name:  "bad cidr",
			setup: func(t *testing.T, s *server) { s.Args = append(s.Args, "--cluster-cidr", "10.42.0.0/33") },
			want:  []string{"invalid --cluster-cidr", "10.42.0.0/33"},
		},
		{
			name: "dual-stack cluster with a single-stack service range",
			setup: func(t *testing.T, s *server) {
				s.Args = append(s.Args, "--cluster-cidr", "10.42.0.0/16,fd42::/56", "--service-cidr", "10.43.0.0/16")
			},
			want:  []string{"--cluster-cidr 10.42.0.0/16,fd42::/56 and --service-cidr 10.43.0.0/16 differ in IP families", "--service-cidr 10.43.0.0/16,fd43::/112"},
			check: nothingCreated,
		},
		{
			name:  "two cluster ranges of one family",
			setup: func(t *testing.T, s *server) { s.Args = append(s.Args, "--cluster-cidr", "10.42.0.0/16,10.44.0.0/16") },
			want:  []string{`invalid --cluster-cidr "10.42.0.0/16,10.44.0.0/16"`, "both ranges are IPv4"},
			check: nothingCreated,
		},
		{
			name: "IPv6 service range too large, from config.yaml",
			setup: func(t *testing.T, s *server) {
				if err := os.WriteFile(s.ConfigFile, []byte("cluster-cidr: 10.42.0.0/16,fd42::/56\nservice-cidr: 10.43.0.0/16,fd43::/64\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want:  []string{"invalid --service-cidr fd43::/64", "the API server's limit", "/108"},
			check: nothingCreated,
		},
		{
			name:  "bad port value",
			setup: func(t *testing.T, s *server) { s.Args = append(s.Args, "--https-listen-port", "http") },
			want:  []string{"https-listen-port", "http", "--help"},
		},
		{
			name:  "unknown flag",
			setup: func(t *testing.T, s *server) { s.Args = append(s.Args, "--no-such-flag") },
			want:  []string{"no-such-flag", "kubox server --help"},
		},
		{
			name:  "bad kubeconfig mode",
			setup: func(t *testing.T, s *server) { s.Args = append(s.Args, "--write-kubeconfig-mode", "999") },
			want:  []string{"--write-kubeconfig-mode", "999"},
		},
		{
			name: "bad extra apiserver arg",
			setup: func(t *testing.T, s *server) {
				s.Args = append(s.Args, "--kube-apiserver-arg", "no-such-upstream-flag=1")
			},
			want: []string{"apiserver", "no-such-upstream-flag"},
		},
		{
			name: "unknown config key",
			setup: func(t *testing.T, s *server) {
				os.WriteFile(s.ConfigFile, []byte("data-dri: /srv/kubox\n"), 0o600)
			},
			want: []string{"config.yaml", `"data-dri"`, "data-dir"},
		},
		{
			name: "wrong config type",
			setup: func(t *testing.T, s *server) {
				os.WriteFile(s.ConfigFile, []byte("https-listen-port: abc\n"), 0o600)
			},
			want: []string{"config.yaml", "https-listen-port", "integer"},
		},
		{
			name: "missing config file",
			setup: func(t *testing.T, s *server) {
				s.ConfigFile = filepath.Join(s.Dir, "nope.yaml")
			},
			want: []string{"nope.yaml", "--config"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t)
			c.setup(t, s)
			line := failingRun(t, s)
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("last line %q lacks %q", line, w)
				}
			}
			if c.check != nil {
				c.check(t, s)
			}
		})
	}
}

// nodeWithRegistries makes s a server with a node whose registries.yaml,
// named in config.yaml, holds content.
func nodeWithRegistries(t *testing.T, s *server, content string) {
	file := filepath.Join(s.Dir, "registries.yaml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.ConfigFile, []byte("private-registry: "+file+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Args = []string{"--run-dir", filepath.Join(s.Dir, "run")}
}

// nothingCreated: a refused start made none of the server's files.
func nothingCreated(t *testing.T, s *server) {
	for _, p := range []string{s.DataDir, s.Kubeconfig, filepath.Join(s.Dir, "run")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}

// failingRun runs s, which must fail within 90 s, and returns its last
// line, which must be kubox's error.
func failingRun(t *testing.T, s *server) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, s.argv()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kubox did not exit within 90s\n%s", stderr.String())
	}
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("exit code 0, want non-zero\n%s", stderr.String())
	}
	line := lastLine(stderr.String())
	if !strings.HasPrefix(line, "kubox: ") {
		t.Errorf("last line %q does not start with \"kubox: \"", line)
	}
	return line
}
