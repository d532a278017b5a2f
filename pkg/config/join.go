package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/kubox-io/kubox/pkg/config/paths"
)

// Cluster holds the cluster-wide values a node must share with its server:
// the server derives them from its configuration (Server.Cluster) and hands
// them to joining nodes, which keep the last copy.
type Cluster struct {
	ClusterCIDR string `json:"clusterCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	// ServiceNodePorts is the NodePort range; "" (an older server) is
	// DefaultNodePortRange.
	ServiceNodePorts string   `json:"serviceNodePorts,omitempty"`
	ClusterDNS       string   `json:"clusterDNS"`
	ClusterDomain    string   `json:"clusterDomain"`
	FlannelBackend   string   `json:"flannelBackend"`
	ServerURLs       []string `json:"serverURLs"`
	// Disabled are the add-ons the server runs without (--disable); the
	// node-side ones (servicelb) stay off on agents too.
	Disabled []string `json:"disabled,omitempty"`
}

// Cluster is what the server tells joining nodes.
func (s *Server) Cluster() Cluster {
	c := Cluster{
		ClusterCIDR:      s.ClusterCIDRs.String(),
		ServiceCIDR:      s.ServiceCIDRs.String(),
		ServiceNodePorts: s.ServiceNodePorts,
		ClusterDNS:       s.ClusterDNS.String(),
		ClusterDomain:    s.ClusterDomain,
		FlannelBackend:   s.FlannelBackend,
		ServerURLs:       []string{"https://" + net.JoinHostPort(s.AdvertiseAddress.String(), strconv.Itoa(s.HTTPSPort))},
	}
	for _, name := range Addons {
		if s.Disabled[name] {
			c.Disabled = append(c.Disabled, name)
		}
	}
	return c
}

// DefaultLBServerPort is the loopback port of an agent's API balancer.
const DefaultLBServerPort = 6444

// JoinOptions are the raw values of `kubox agent`, as bound to its flags
// and config file keys. Join() validates them.
type JoinOptions struct {
	ServerURL string
	Token     string
	TokenFile string
	DataDir   string
	RunDir    string
	// LBServerPort is the loopback port of the node's API balancer.
	LBServerPort int
	Debug        bool
	Verbosity    int
	// LogFormat is "text" (or "") or "json".
	LogFormat string
	Node      AgentOptions
}

// Join is the validated configuration of a node that joins a server. The
// node's own settings are checked here; the cluster's arrive with the join
// (Agent).
type Join struct {
	ServerURL string
	// ServerAddress is the server's host:port, with the API's default port.
	ServerAddress string
	// Token is the join token, "" for a node that joined before. Its
	// format is the join protocol's to check.
	Token string
	Paths paths.Paths
	// LBAddress is where the node's API balancer listens.
	LBAddress string
	Debug     bool
	Verbosity int
	// LogFormat is LogFormatText or LogFormatJSON.
	LogFormat string
	Node      AgentOptions
}

// Join validates the options of `kubox agent`.
func (o JoinOptions) Join() (*Join, error) {
	j := &Join{ServerURL: o.ServerURL, Token: o.Token, Debug: o.Debug, Verbosity: o.Verbosity, Node: o.Node}
	var err error
	if j.LogFormat, err = logFormat(o.LogFormat); err != nil {
		return nil, err
	}
	if o.ServerURL == "" {
		return nil, errors.New("no server to join: give --server https://<server address>:6443 (or KUBOX_URL)")
	}
	u, err := url.Parse(o.ServerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid --server %q: give it as https://<server address>:6443", o.ServerURL)
	}
	j.ServerAddress = ServerAddress(u)
	if j.Token == "" && o.TokenFile != "" {
		data, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --token-file: %v", err)
		}
		j.Token = strings.TrimSpace(string(data))
	}
	if o.LBServerPort < 1 || o.LBServerPort > 65535 {
		return nil, fmt.Errorf("invalid --lb-server-port %d: must be between 1 and 65535", o.LBServerPort)
	}
	j.LBAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.LBServerPort))
	if j.Paths, err = DataPaths(o.DataDir, o.RunDir); err != nil {
		return nil, err
	}
	// The node's own settings, checked before anything is asked of the
	// server.
	if _, err := j.Agent(Cluster{}); err != nil {
		return nil, err
	}
	return j, nil
}

// Agent is the node's configuration with the cluster's values c, as the
// server sent them; empty values take the defaults. The pod network's
// backend is the cluster's, not the node's.
func (j *Join) Agent(c Cluster) (*Agent, error) {
	s := &Server{Paths: j.Paths, ClusterDomain: c.ClusterDomain, Debug: j.Debug, Verbosity: j.Verbosity, Disabled: map[string]bool{}}
	for _, name := range c.Disabled {
		s.Disabled[name] = true
	}
	var err error
	if s.ClusterCIDRs, err = parseCIDRs("cluster CIDR", c.ClusterCIDR, DefaultClusterCIDR); err != nil {
		return nil, fmt.Errorf("the server sent an invalid cluster CIDR %q", c.ClusterCIDR)
	}
	if s.ServiceCIDRs, err = parseCIDRs("service CIDR", c.ServiceCIDR, DefaultServiceCIDR); err != nil {
		return nil, fmt.Errorf("the server sent an invalid service CIDR %q", c.ServiceCIDR)
	}
	if s.ClusterDNS = net.ParseIP(orDefault(c.ClusterDNS, DefaultClusterDNS)); s.ClusterDNS == nil {
		return nil, fmt.Errorf("the server sent an invalid cluster DNS address %q", c.ClusterDNS)
	}
	if s.ClusterDomain == "" {
		s.ClusterDomain = DefaultClusterDomain
	}
	s.ServiceNodePorts = orDefault(c.ServiceNodePorts, DefaultNodePortRange)
	if err := checkPortRange(s.ServiceNodePorts); err != nil {
		return nil, fmt.Errorf("the server sent an invalid NodePort range: %w", err)
	}
	node := j.Node
	if c.FlannelBackend != "" {
		node.FlannelBackend = c.FlannelBackend
	}
	return node.Agent(s)
}

// ServerAddress is a server URL's host:port, with the API's default port.
func ServerAddress(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(DefaultHTTPSPort))
}

// DataPaths derives the paths of a data dir and a run dir ("" derives it
// from the data dir, as the server does), both made absolute.
func DataPaths(dataDir, runDir string) (paths.Paths, error) {
	return dataPaths(dataDir, DefaultConfigDir, runDir)
}

func dataPaths(dataDir, configDir, runDir string) (paths.Paths, error) {
	dataDir, err := absDir("--data-dir", dataDir)
	if err != nil {
		return paths.Paths{}, err
	}
	if configDir, err = absDir("--config-dir", configDir); err != nil {
		return paths.Paths{}, err
	}
	if runDir == "" {
		runDir = paths.RunDirFor(dataDir, DefaultDataDir)
	}
	if runDir, err = absDir("--run-dir", runDir); err != nil {
		return paths.Paths{}, err
	}
	return paths.New(dataDir, configDir, runDir), nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// WithNode validates the server's options with those of its own node: the
// node follows the cluster's pod network backend, and a server without a
// node (--disable-agent) runs no metrics-server, which sits beside a
// kubelet and would open a port of its own.
func (o ServerOptions) WithNode(ao AgentOptions) (*Server, *Agent, error) {
	cfg, err := o.Server()
	if err != nil {
		return nil, nil, err
	}
	if ao.DisableAgent {
		cfg.Disabled["metrics-server"] = true
		return cfg, nil, nil
	}
	ao.FlannelBackend = cfg.FlannelBackend
	node, err := ao.Agent(cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg.NodeName = node.NodeName
	return cfg, node, nil
}
