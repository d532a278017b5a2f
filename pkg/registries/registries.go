// Package registries reads the private registry configuration
// (registries.yaml, in the format k3s uses) and turns it into what
// containerd reads: one hosts.toml directory per registry, and the
// credentials its CRI plugin sends. Image name rewrites, which upstream
// containerd does not know, are served by a loopback proxy of its own
// (Proxy) that containerd's hosts.toml points at.
package registries

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Wildcard is the mirror entry that applies to every registry without one
// of its own.
const Wildcard = "*"

// Config is a validated registries.yaml.
type Config struct {
	// File is where it was read, for messages.
	File string
	// Mirrors in the file's order.
	Mirrors []Mirror
	// Hosts are the configs entries by host[:port].
	Hosts map[string]Host
}

// Mirror says where images of Registry are pulled from: Endpoints in
// order, then the registry itself.
type Mirror struct {
	Registry  string // host[:port], or Wildcard
	Endpoints []*url.URL
	// Rewrites change the repository name for the endpoints (not for the
	// registry itself); the first pattern that matches wins.
	Rewrites []Rewrite
}

// Rewrite is one rewrite rule: Pattern's match in a repository name is
// replaced with Replacement ($1 names the first group).
type Rewrite struct {
	Pattern     *regexp.Regexp
	Replacement string
}

// Host holds what a configs entry says about one registry host.
type Host struct {
	Auth *Auth
	TLS  *TLS
}

// Auth are credentials for a registry host. Username and Password are
// filled in from Auth (base64 user:pass) when the file gives that form.
type Auth struct {
	Username      string
	Password      string
	Auth          string
	IdentityToken string
}

// TLS is how a registry host is reached over TLS.
type TLS struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// Load reads and validates the file at path. A missing file is no
// configuration (nil) unless explicit says the user named it.
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("registries.yaml %s: no such file; check --private-registry", path)
	case err != nil:
		return nil, fmt.Errorf("registries.yaml %s: %v", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("registries.yaml %s: %w", path, err)
	}
	c.File = path
	return c, nil
}

// Parse validates a registries.yaml's content strictly: an unknown key, a
// value of the wrong type, a bad URL or regular expression, or a TLS file
// that cannot be loaded is an error naming the key.
func Parse(data []byte) (*Config, error) {
	c := &Config{Hosts: map[string]Host{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return c, nil // empty, or only comments
	}
	top := doc.Content[0]
	err := eachKey(top, "", map[string]func(string, *yaml.Node) error{
		"mirrors": func(key string, n *yaml.Node) error {
			return eachEntry(n, key, func(name, key string, v *yaml.Node) error {
				m, err := parseMirror(name, key, v)
				if err == nil {
					c.Mirrors = append(c.Mirrors, m)
				}
				return err
			})
		},
		"configs": func(key string, n *yaml.Node) error {
			return eachEntry(n, key, func(name, key string, v *yaml.Node) error {
				h, err := parseHost(name, key, v)
				if err == nil {
					c.Hosts[name] = h
				}
				return err
			})
		},
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func parseMirror(name, key string, n *yaml.Node) (Mirror, error) {
	m := Mirror{Registry: name}
	if name != Wildcard {
		if err := checkHost(name); err != nil {
			return m, fmt.Errorf("mirror %q: %v", name, err)
		}
	}
	err := eachKey(n, key, map[string]func(string, *yaml.Node) error{
		"endpoint": func(key string, n *yaml.Node) error {
			list, err := stringList(key, n)
			if err != nil {
				return err
			}
			for _, e := range list {
				u, err := endpointURL(e)
				if err != nil {
					return fmt.Errorf("%q: %v", key, err)
				}
				m.Endpoints = append(m.Endpoints, u)
			}
			return nil
		},
		"rewrite": func(key string, n *yaml.Node) error {
			return eachEntry(n, key, func(pattern, key string, v *yaml.Node) error {
				repl, err := scalar(key, v)
				if err != nil {
					return err
				}
				re, err := regexp.Compile(pattern)
				if err != nil {
					return fmt.Errorf("%q: not a regular expression: %v", key, err)
				}
				m.Rewrites = append(m.Rewrites, Rewrite{Pattern: re, Replacement: repl})
				return nil
			})
		},
	})
	if err == nil && len(m.Rewrites) > 0 && len(m.Endpoints) == 0 {
		err = fmt.Errorf("%q: a rewrite applies to the mirror's endpoints, and it has none; add %s.endpoint", key+".rewrite", key)
	}
	return m, err
}

func parseHost(name, key string, n *yaml.Node) (Host, error) {
	var h Host
	if name == Wildcard {
		return h, fmt.Errorf("%q: configs are per registry host; name each host:port", key)
	}
	if err := checkHost(name); err != nil {
		return h, fmt.Errorf("config %q: %v", name, err)
	}
	err := eachKey(n, key, map[string]func(string, *yaml.Node) error{
		"auth": func(key string, n *yaml.Node) error {
			a := &Auth{}
			fields := map[string]*string{"username": &a.Username, "password": &a.Password, "auth": &a.Auth, "identitytoken": &a.IdentityToken}
			if err := stringFields(key, n, fields); err != nil {
				return err
			}
			if err := a.complete(key); err != nil {
				return err
			}
			h.Auth = a
			return nil
		},
		"tls": func(key string, n *yaml.Node) error {
			t := &TLS{}
			var skip string
			fields := map[string]*string{"ca_file": &t.CAFile, "cert_file": &t.CertFile, "key_file": &t.KeyFile, "insecure_skip_verify": &skip}
			if err := stringFields(key, n, fields); err != nil {
				return err
			}
			if skip != "" {
				b, err := strconv.ParseBool(skip)
				if err != nil {
					return fmt.Errorf("%q must be true or false, not %q", key+".insecure_skip_verify", skip)
				}
				t.InsecureSkipVerify = b
			}
			if _, err := t.Config(key); err != nil {
				return err
			}
			h.TLS = t
			return nil
		},
	})
	return h, err
}

// complete checks an auth entry and fills in Username and Password from
// the base64 form.
func (a *Auth) complete(key string) error {
	if a.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(a.Auth)
		user, pass, ok := strings.Cut(string(dec), ":")
		if err != nil || !ok {
			return fmt.Errorf("%q must be base64 of username:password", key+".auth")
		}
		if a.Username == "" && a.Password == "" {
			a.Username, a.Password = user, pass
		}
	}
	switch {
	case a.Username == "" && a.Password == "" && a.IdentityToken == "":
		return fmt.Errorf("%q gives no credentials: set username and password, auth, or identitytoken", key)
	case a.IdentityToken == "" && (a.Username == "" || a.Password == ""):
		return fmt.Errorf("%q needs both username and password", key)
	}
	return nil
}

// Config is the client TLS configuration of t, its files loaded; key names
// the entry in messages.
func (t *TLS) Config(key string) (*tls.Config, error) {
	c := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user's choice for this host
	for _, f := range []struct{ name, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			return nil, fmt.Errorf("%q: give an absolute path, not %q", key+"."+f.name, f.path)
		}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", key+".ca_file", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%q: %s holds no PEM certificate", key+".ca_file", t.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case t.KeyFile != "" && t.CertFile == "":
		return nil, fmt.Errorf("%q needs %s.cert_file too", key+".key_file", key)
	case t.CertFile != "":
		keyFile := t.KeyFile
		if keyFile == "" {
			keyFile = t.CertFile // one PEM file with both, as containerd allows
		}
		pair, err := tls.LoadX509KeyPair(t.CertFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", key+".cert_file", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// checkHost accepts a registry host name or address with an optional port.
func checkHost(h string) error {
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/ ") || h == "" {
		return errors.New("give the registry's host[:port] (e.g. docker.io or registry.example.com:5000), not a URL")
	}
	host := h
	if strings.Contains(h, ":") && !strings.HasSuffix(h, "]") {
		hh, port, err := net.SplitHostPort(h)
		if err != nil {
			return fmt.Errorf("give host[:port]: %v", err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("invalid port %q", port)
		}
		host = hh
	}
	if host == "" {
		return errors.New("give the registry's host[:port]")
	}
	return nil
}

// endpointURL checks a mirror endpoint: an http(s) URL with a host and at
// most a path.
func endpointURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("endpoint %q: give a URL starting with https:// or http://", s)
	case u.Host == "":
		return nil, fmt.Errorf("endpoint %q has no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("endpoint %q: put credentials in configs.%q.auth, not in the URL", s, u.Host)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("endpoint %q: a query or fragment has no meaning here", s)
	}
	if err := checkHost(u.Host); err != nil {
		return nil, fmt.Errorf("endpoint %q: %v", s, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// The YAML walkers below name every value by its dotted key path.

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return "a single value"
	}
	return "an alias"
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

// eachEntry calls f for every key of a map whose keys are names (of
// registries, hosts or patterns). An empty value is an empty map.
func eachEntry(n *yaml.Node, key string, f func(name, key string, v *yaml.Node) error) error {
	return eachLine(n, key, func(k *yaml.Node, key string, v *yaml.Node) error { return f(k.Value, key, v) })
}

// eachLine is eachEntry with the key's node, for messages naming its line.
func eachLine(n *yaml.Node, key string, f func(k *yaml.Node, key string, v *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode && key == "" {
		return fmt.Errorf("the file must be a map with mirrors and configs, not %s", kindName(n))
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%q must be a map, not %s", key, kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("%q: line %d: a key must be a single value", key, k.Line)
		}
		if seen[k.Value] {
			return fmt.Errorf("%q is given twice (line %d)", join(key, k.Value), k.Line)
		}
		seen[k.Value] = true
		if err := f(k, join(key, k.Value), v); err != nil {
			return err
		}
	}
	return nil
}

// eachKey walks a map whose keys must all be in known.
func eachKey(n *yaml.Node, key string, known map[string]func(string, *yaml.Node) error) error {
	return eachLine(n, key, func(k *yaml.Node, path string, v *yaml.Node) error {
		f, ok := known[k.Value]
		if !ok {
			return fmt.Errorf("unknown key %q (line %d); known here: %s", path, k.Line, knownKeys(known))
		}
		return f(path, v)
	})
}

func knownKeys[T any](m map[string]T) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func scalar(key string, n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", fmt.Errorf("%q must be a single value, not %s", key, kindName(n))
	}
	return n.Value, nil
}

func stringList(key string, n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%q must be a list of URLs, not %s", key, kindName(n))
	}
	var out []string
	for i, item := range n.Content {
		s, err := scalar(fmt.Sprintf("%s[%d]", key, i), item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func stringFields(key string, n *yaml.Node, fields map[string]*string) error {
	known := map[string]func(string, *yaml.Node) error{}
	for name, dst := range fields {
		known[name] = func(key string, v *yaml.Node) error {
			s, err := scalar(key, v)
			*dst = s
			return err
		}
	}
	return eachKey(n, key, known)
}
