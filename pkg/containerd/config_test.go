package containerd

import (
	"strings"
	"testing"

	"github.com/kubox-io/kubox/pkg/registries"
)

// TestRender: every path containerd writes is one kubox chose, and the
// oom_score_adj clamp follows the capability check.
func TestRender(t *testing.T) {
	c := Config{
		Root: "/data/agent/containerd", State: "/run/kubox/containerd",
		Address: "/run/kubox/containerd/containerd.sock", BinDir: "/data/data/abc/bin",
		CNIConfDir: "/data/agent/etc/cni/net.d", SandboxImage: "kubox.local/pause:1",
		RestrictOOMScoreAdj: true, RegistryConfigDir: "/data/agent/etc/containerd/certs.d",
	}
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		`root = "/data/agent/containerd"`,
		`state = "/run/kubox/containerd"`,
		`address = "/run/kubox/containerd/containerd.sock"`,
		`address = "/run/kubox/containerd/containerd.sock.ttrpc"`,
		`BinaryName = "/data/data/abc/bin/runc"`,
		`Root = "/run/kubox/containerd/runc"`,
		`bin_dirs = ["/data/data/abc/bin"]`,
		`conf_dir = "/data/agent/etc/cni/net.d"`,
		`sandbox = "kubox.local/pause:1"`,
		`restrict_oom_score_adj = true`,
		`snapshotter = "overlayfs"`,
		`SystemdCgroup = false`,
		`path = "/data/agent/containerd/opt"`,
		`config_path = "/data/agent/etc/containerd/certs.d"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %s\n%s", want, s)
		}
	}
	// Nothing may point at containerd's system-wide defaults.
	for _, bad := range []string{`"/var/lib/containerd`, `"/run/containerd`, `"/etc/containerd`, `"/opt/cni`} {
		if strings.Contains(s, bad) {
			t.Errorf("config refers to %s", bad)
		}
	}
	if strings.Contains(s, "registry.configs") {
		t.Errorf("credentials without registries.yaml:\n%s", s)
	}
	c.RegistryAuth = map[string]registries.Auth{
		"registry-1.docker.io": {Username: "u", Password: `p"w`, Auth: "dTpwInc="},
		"ghcr.io":              {IdentityToken: "tok"},
	}
	out, _ = Render(c)
	if want := `
[plugins."io.containerd.cri.v1.images".registry]
  config_path = "/data/agent/etc/containerd/certs.d"

[plugins."io.containerd.cri.v1.images".registry.configs."ghcr.io".auth]
  identitytoken = "tok"

[plugins."io.containerd.cri.v1.images".registry.configs."registry-1.docker.io".auth]
  username = "u"
  password = "p\"w"
`; !strings.HasSuffix(string(out), want) {
		t.Errorf("credentials: config ends\n%s\nwant\n%s", out[len(out)-400:], want)
	}
	c.RestrictOOMScoreAdj = false
	c.Root = `/odd "path"`
	out, _ = Render(c)
	if !strings.Contains(string(out), `restrict_oom_score_adj = false`) || !strings.Contains(string(out), `root = "/odd \"path\""`) {
		t.Errorf("clamp off or quoting wrong:\n%s", out)
	}
}
