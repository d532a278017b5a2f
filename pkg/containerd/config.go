// Package containerd runs containerd for a kubox node: it renders
// containerd's configuration with every path inside kubox's own
// directories, supervises containerd as a child process (the kubox binary
// re-executed as `kubox containerd`), and imports images into it.
package containerd

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// Config is what the rendered containerd configuration depends on.
type Config struct {
	Root         string // persistent state: <data-dir>/agent/containerd
	State        string // runtime state: <run-dir>/containerd
	Address      string // gRPC socket
	BinDir       string // runc, shim and CNI plugins
	CNIConfDir   string
	SandboxImage string
	// RestrictOOMScoreAdj clamps pods' oom_score_adj to containerd's own,
	// for hosts (and containers) without CAP_SYS_RESOURCE.
	RestrictOOMScoreAdj bool
	Snapshotter         string // overlayfs, or native where overlay is missing
	RegistryConfigDir   string // hosts.toml tree (certs.d)
	Debug               bool
}

var configTemplate = template.Must(template.New("containerd").Funcs(template.FuncMap{"q": quote}).Parse(`# Written by kubox at every start; edits are lost.
version = 3
root = {{q .Root}}
state = {{q .State}}

[grpc]
  address = {{q .Address}}

[ttrpc]
  address = {{q (print .Address ".ttrpc")}}

[debug]
  level = {{if .Debug}}"debug"{{else}}"info"{{end}}

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = {{q (print .Root "/opt")}}

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  restrict_oom_score_adj = {{.RestrictOOMScoreAdj}}

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = {{q (print .BinDir "/runc")}}
  Root = {{q (print .State "/runc")}}
  SystemdCgroup = false

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [{{q .BinDir}}]
  conf_dir = {{q .CNIConfDir}}

[plugins."io.containerd.cri.v1.images"]
  snapshotter = {{q .Snapshotter}}

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = {{q .SandboxImage}}

[plugins."io.containerd.cri.v1.images".registry]
  config_path = {{q .RegistryConfigDir}}
`))

// Render returns the containerd configuration file for c.
func Render(c Config) ([]byte, error) {
	if c.Snapshotter == "" {
		c.Snapshotter = "overlayfs"
	}
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// quote renders a TOML basic string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return fmt.Sprintf(`"%s"`, r.Replace(s))
}
