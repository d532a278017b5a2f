package registries

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// markerPrefix starts every hosts.toml kubox writes: a directory whose
// hosts.toml starts with it is kubox's to replace or remove.
const markerPrefix = "# Written by kubox from "

// DockerHub is the registry behind docker.io, where containerd pulls
// docker.io's images from; configs for either name apply to it.
const DockerHub = "registry-1.docker.io"

// route is one mirror endpoint with rewrites, reached through the proxy at
// path /<index>.
type route struct {
	mirror   *Mirror
	endpoint *url.URL
}

// routes are the endpoints the proxy serves, in a fixed order: those of
// every mirror with rewrites, in the file's order.
func (c *Config) routes() []route {
	var out []route
	if c == nil {
		return nil
	}
	for i := range c.Mirrors {
		m := &c.Mirrors[i]
		if len(m.Rewrites) == 0 {
			continue
		}
		for _, e := range m.Endpoints {
			out = append(out, route{mirror: m, endpoint: e})
		}
	}
	return out
}

// NeedsProxy tells whether a mirror has rewrites, which only the proxy
// can serve.
func (c *Config) NeedsProxy() bool { return len(c.routes()) > 0 }

// hostConfig is the configs entry for a host: for Docker Hub, docker.io's
// when it has none of its own.
func (c *Config) hostConfig(host string) Host {
	h, ok := c.Hosts[host]
	if !ok && host == DockerHub {
		h = c.Hosts["docker.io"]
	}
	return h
}

// Credentials are the configs entries' credentials by the host containerd
// asks for them (the endpoint's host:port; Docker Hub's for docker.io).
func (c *Config) Credentials() map[string]Auth {
	out := map[string]Auth{}
	if c == nil {
		return out
	}
	for host, h := range c.Hosts {
		if h.Auth != nil {
			out[host] = *h.Auth
		}
	}
	if a, ok := out["docker.io"]; ok {
		if _, own := out[DockerHub]; !own {
			out[DockerHub] = a
		}
	}
	return out
}

// HostsFiles renders containerd's hosts.toml for every registry the file
// configures, by directory name (the registry's host[:port], or _default
// for the wildcard mirror). proxy is the rewrite proxy's base URL
// (http://127.0.0.1:<port>) and secret its Secret, used for the endpoints
// of mirrors with rewrites; both "" when there are none.
func (c *Config) HostsFiles(proxy, secret string) map[string][]byte {
	files := map[string][]byte{}
	if c == nil {
		return files
	}
	routes := c.routes()
	var wildcard *Mirror
	for i := range c.Mirrors {
		m := &c.Mirrors[i]
		if m.Registry == Wildcard {
			wildcard = m
			files["_default"] = c.hostsFile(m, "", routes, proxy, secret)
			continue
		}
		files[m.Registry] = c.hostsFile(m, m.Registry, routes, proxy, secret)
	}
	// A host with TLS settings and no mirror entry gets a directory of its
	// own for them, and with it the wildcard's endpoints, since containerd
	// reads only the most specific directory.
	for host, h := range c.Hosts {
		if _, ok := files[host]; ok || h.TLS == nil {
			continue
		}
		files[host] = c.hostsFile(wildcard, host, routes, proxy, secret)
	}
	return files
}

// hostsFile is the hosts.toml of registry (empty for the wildcard) with
// m's endpoints (m may be nil) before the registry itself.
func (c *Config) hostsFile(m *Mirror, registry string, routes []route, proxy, secret string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s at every start; edits are lost.\n", markerPrefix, c.File)
	if registry == "" {
		b.WriteString("# Pulls from a registry without a directory of its own try these hosts in\n# order, then the registry itself.\n")
	} else {
		fmt.Fprintf(&b, "# Pulls from %s try these hosts in order, then %s itself.\n", registry, registry)
		own := registry
		if own == "docker.io" {
			own = DockerHub
		}
		if t := c.hostConfig(own).TLS; t != nil {
			fmt.Fprintf(&b, "\n# TLS of %s itself\n", own)
			writeTLS(&b, "", t)
		}
	}
	if m == nil {
		return b.Bytes()
	}
	for _, e := range m.Endpoints {
		b.WriteString("\n")
		if i := slices.IndexFunc(routes, func(r route) bool { return r.mirror == m && r.endpoint == e }); i >= 0 {
			fmt.Fprintf(&b, "# %s, through kubox's rewrite proxy\n", e)
			fmt.Fprintf(&b, "[host.%s]\n", quote(fmt.Sprintf("%s/%d", proxy, i)))
			b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
			fmt.Fprintf(&b, "  header = {%s = %s}\n", quote(SecretHeader), quote(secret))
			continue
		}
		fmt.Fprintf(&b, "[host.%s]\n", quote(e.String()))
		b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
		if t := c.hostConfig(e.Host).TLS; t != nil {
			writeTLS(&b, "  ", t)
		}
	}
	return b.Bytes()
}

func writeTLS(b *bytes.Buffer, indent string, t *TLS) {
	if t.CAFile != "" {
		fmt.Fprintf(b, "%sca = %s\n", indent, quote(t.CAFile))
	}
	if t.CertFile != "" {
		if t.KeyFile != "" {
			fmt.Fprintf(b, "%sclient = [[%s, %s]]\n", indent, quote(t.CertFile), quote(t.KeyFile))
		} else {
			fmt.Fprintf(b, "%sclient = %s\n", indent, quote(t.CertFile))
		}
	}
	if t.InsecureSkipVerify {
		fmt.Fprintf(b, "%sskip_verify = true\n", indent)
	}
}

// quote renders a TOML basic string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// WriteHosts makes dir hold files (HostsFiles' result): each one's
// hosts.toml is replaced, and the directories kubox wrote before that
// files no longer names are removed. Directories of others stay. It
// returns the names it removed.
func WriteHosts(dir string, files map[string][]byte) (removed []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; keep || !e.IsDir() || !writtenByKubox(filepath.Join(dir, e.Name(), "hosts.toml")) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, err
		}
		removed = append(removed, e.Name())
	}
	for name, data := range files {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return removed, err
		}
		if err := atomicfile.Write(filepath.Join(d, "hosts.toml"), data, 0o600); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func writtenByKubox(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.HasPrefix(line, markerPrefix)
}
