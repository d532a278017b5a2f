// Package containerd runs containerd for a kubox node: it renders
// containerd's configuration with every path inside kubox's own
// directories, supervises containerd as a child process (the kubox binary
// re-executed as `kubox containerd`), and imports images into it.
package containerd

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/template"

	"github.com/kubox-io/kubox/pkg/registries"
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
	// RegistryAuth are registry credentials by the host containerd sends
	// them to (registries.yaml's configs).
	RegistryAuth map[string]registries.Auth
	Debug        bool
}

// auth is one RegistryAuth entry, in the order rendered.
type auth struct {
	Host string
	registries.Auth
}

// Auths lists RegistryAuth by host, for a stable file.
func (c Config) Auths() []auth {
	var out []auth
	for h, a := range c.RegistryAuth {
		out = append(out, auth{h, a})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
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
{{- /* hosts.toml has no credentials: the CRI plugin looks them up here by
the host of the endpoint it pulls from, beside config_path (it logs that the
table is deprecated, and pulls without the transfer service with it). */}}
{{range .Auths}}
[plugins."io.containerd.cri.v1.images".registry.configs.{{q .Host}}.auth]
{{- with .Username}}
  username = {{q .}}{{end}}
{{- with .Password}}
  password = {{q .}}{{end}}
{{- with .IdentityToken}}
  identitytoken = {{q .}}{{end}}
{{end}}`))

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
