package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kubox-io/kubox/pkg/registries"
)

// AgentOptions are the raw node settings, shared by `kubox server` (which
// runs a node unless --disable-agent) and `kubox agent`.
type AgentOptions struct {
	DisableAgent bool
	NodeName     string
	NodeIP       string
	// NodeExternalIPs are --node-external-ip's values, each one address
	// or a comma-separated list.
	NodeExternalIPs []string
	NodeLabels      []string
	NodeTaints      []string
	KubeletArgs     []string
	KubeProxyArgs   []string
	FlannelBackend  string
	FlannelIface    string
	ResolvConf      string
	// DisableNetworkPolicy: the node enforces no NetworkPolicies.
	DisableNetworkPolicy bool
	// DefaultLocalStoragePath is where local-path volumes go; empty for
	// <data-dir>/storage.
	DefaultLocalStoragePath string
	// ProtectKernelDefaults: the node refuses to start unless the kernel
	// parameters the kubelet needs are set already, and the kubelet
	// changes none. On with --profile cis.
	ProtectKernelDefaults bool
	// Profile is `kubox agent --profile`; a server's node follows the
	// server's Profile.
	Profile string
	// KernelParamsDir is where kernel parameters are read, ""
	// for DefaultKernelParamsDir (a test's temp dir otherwise).
	KernelParamsDir string
	// PrivateRegistry is the registries.yaml --private-registry names, ""
	// for DefaultPrivateRegistry, which may be missing.
	PrivateRegistry string
}

// DefaultPrivateRegistry is the private registry configuration read
// unless --private-registry names another file.
const DefaultPrivateRegistry = DefaultConfigDir + "/registries.yaml"

// Agent is the validated node configuration.
type Agent struct {
	NodeName string
	// NodeIPs are the node's addresses: in a dual-stack cluster one per
	// family, in the cluster's order.
	NodeIPs []net.IP
	// NodeExternalIPs are the node's ExternalIP addresses, set on the
	// Node by the server's cloud node controller.
	NodeExternalIPs []net.IP
	NodeLabels      []string
	NodeTaints      []string
	KubeletArgs     []string
	KubeProxyArgs   []string
	FlannelBackend  string
	FlannelIface    string
	ResolvConf      string
	StorageDir      string // local-path volumes
	// NetworkPolicy: the node enforces NetworkPolicies for its pods
	// (unless --disable-network-policy).
	NetworkPolicy bool
	// ProtectKernelDefaults: the kernel parameters the kubelet needs were
	// checked before the node started; the kubelet changes none.
	ProtectKernelDefaults bool
	// Disabled add-ons, by name (--disable on the server): their node
	// controllers do not run.
	Disabled map[string]bool
	// Registries is the private registry configuration (registries.yaml),
	// nil without one.
	Registries *registries.Config

	// Cluster-wide values the node needs, from the server.
	ClusterCIDRs  CIDRs
	ServiceCIDRs  CIDRs
	NodePorts     string // the NodePort range, "30000-32767"
	ClusterDNS    net.IP
	ClusterDomain string
	Debug         bool
	Verbosity     int
}

// NodeIP is the node's address of the cluster's primary family.
func (a *Agent) NodeIP() net.IP { return a.NodeIPs[0] }

// NodeName checks a --node-name; "" means the host name, lower-cased.
func NodeName(name string) (string, error) {
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("cannot read the hostname for the node name: %w; set --node-name", err)
		}
		name = strings.ToLower(h)
	}
	if !nodeNameRE.MatchString(name) || len(name) > 253 {
		return "", fmt.Errorf("invalid --node-name %q: use lowercase letters, digits, '-' and '.'", name)
	}
	return name, nil
}

var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Agent validates the node options; cluster values come from s.
func (o AgentOptions) Agent(s *Server) (*Agent, error) {
	a := &Agent{
		NodeLabels:     o.NodeLabels,
		NodeTaints:     o.NodeTaints,
		KubeletArgs:    o.KubeletArgs,
		KubeProxyArgs:  o.KubeProxyArgs,
		FlannelBackend: o.FlannelBackend,
		FlannelIface:   o.FlannelIface,
		ResolvConf:     o.ResolvConf,
		ClusterCIDRs:   s.ClusterCIDRs,
		ServiceCIDRs:   s.ServiceCIDRs,
		NodePorts:      s.ServiceNodePorts,
		ClusterDNS:     s.ClusterDNS,
		ClusterDomain:  s.ClusterDomain,
		Debug:          s.Debug,
		Verbosity:      s.Verbosity,
		Disabled:       s.Disabled,
		NetworkPolicy:  !o.DisableNetworkPolicy,
	}
	var err error
	if a.NodeName, err = NodeName(o.NodeName); err != nil {
		return nil, err
	}
	if a.NodeIPs, err = nodeIPs(o.NodeIP, s.ClusterCIDRs); err != nil {
		return nil, err
	}
	if a.NodeExternalIPs, err = externalIPs(o.NodeExternalIPs); err != nil {
		return nil, err
	}
	backend, err := flannelBackend(a.FlannelBackend)
	if err != nil {
		return nil, err
	}
	a.FlannelBackend = backend
	for _, l := range a.NodeLabels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			return nil, fmt.Errorf("invalid --node-label %q: use key=value", l)
		}
	}
	for _, t := range a.NodeTaints {
		kv, effect, ok := strings.Cut(t, ":")
		if !ok || kv == "" || (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
			return nil, fmt.Errorf("invalid --node-taint %q: use key=value:NoSchedule|PreferNoSchedule|NoExecute", t)
		}
	}
	for _, group := range [][]string{a.KubeletArgs, a.KubeProxyArgs} {
		for _, arg := range group {
			if strings.HasPrefix(arg, "-") || !strings.Contains(arg, "=") {
				return nil, fmt.Errorf("invalid extra argument %q: give it as name=value without leading dashes", arg)
			}
		}
	}
	a.StorageDir = s.Paths.StorageDir
	if o.DefaultLocalStoragePath != "" {
		if !filepath.IsAbs(o.DefaultLocalStoragePath) {
			return nil, fmt.Errorf("invalid --default-local-storage-path %q: give an absolute path", o.DefaultLocalStoragePath)
		}
		a.StorageDir = filepath.Clean(o.DefaultLocalStoragePath)
	}
	path := o.PrivateRegistry
	if path == "" {
		path = DefaultPrivateRegistry
	}
	if a.Registries, err = registries.Load(path, o.PrivateRegistry != ""); err != nil {
		return nil, err
	}
	if a.ResolvConf != "" {
		if _, err := os.Stat(a.ResolvConf); err != nil {
			return nil, fmt.Errorf("invalid --resolv-conf: %v", err)
		}
	}
	prof, err := profile(o.Profile)
	if err != nil {
		return nil, err
	}
	why := "--protect-kernel-defaults"
	switch {
	case o.ProtectKernelDefaults:
	case prof == ProfileCIS || s.Profile == ProfileCIS:
		why = "--profile cis (which implies --protect-kernel-defaults)"
	default:
		return a, nil
	}
	a.ProtectKernelDefaults = true
	dir := o.KernelParamsDir
	if dir == "" {
		dir = DefaultKernelParamsDir
	}
	if err := checkKernelDefaults(dir, why); err != nil {
		return nil, err
	}
	return a, nil
}

// NodeCredentials are the files a node needs from its server. The node has
// one identity, system:node:<name>: the kubelet, kube-proxy, flannel and
// kubox's own node controllers all use Kubeconfig, so the Node authorizer
// and NodeRestriction keep each of them to its own node.
type NodeCredentials struct {
	ServerCAFile string // verifies the API server
	ClientCAFile string // the kubelet accepts clients it signed
	Credential   string // client certificate and key in one file: system:node:<name>
	Kubeconfig   string // names Credential, so a renewed one is picked up while running
	ServingCert  string // the kubelet's serving certificate, from the kubelet CA
	ServingKey   string
}

// NodeCredentialsIn names the credential files of a node kept in dir.
func NodeCredentialsIn(dir string) NodeCredentials {
	f := func(name string) string { return filepath.Join(dir, name) }
	return NodeCredentials{
		ServerCAFile: f("server-ca.crt"),
		ClientCAFile: f("client-ca.crt"),
		Credential:   f("client-node.pem"),
		Kubeconfig:   f("node.kubeconfig"),
		ServingCert:  f("serving-kubelet.crt"),
		ServingKey:   f("serving-kubelet.key"),
	}
}

// externalIPs checks --node-external-ip's values: IPv4 or IPv6 addresses,
// given one per flag or comma-separated.
func externalIPs(values []string) ([]net.IP, error) {
	var ips []net.IP
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			ip := net.ParseIP(strings.TrimSpace(f))
			if ip == nil || ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() {
				return nil, fmt.Errorf("invalid --node-external-ip %q: give an IPv4 or IPv6 address other nodes and clients reach this node at, e.g. 203.0.113.10", strings.TrimSpace(f))
			}
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		}
	}
	return ips, nil
}
