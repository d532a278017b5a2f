package flannel

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/lease"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"

	// The backends kubox offers.
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"
	_ "github.com/flannel-io/flannel/pkg/backend/wireguard"
)

// Config is what flannel needs from the node.
type Config struct {
	NodeName string
	// NodeIPs are the node's addresses, the primary one first; in a
	// dual-stack cluster one per family.
	NodeIPs []net.IP
	Iface   string // --flannel-iface; empty: the interface holding NodeIPs[0]
	Backend string // vxlan, host-gw or wireguard-native
	// ClusterCIDRs are the pod network's ranges, one per IP family: with
	// an IPv6 one flannel carries IPv6 too (vxlan on its own device,
	// flannel-v6.1).
	ClusterCIDRs []*net.IPNet
	Kubeconfig   string
	ConfDir      string // net-conf.json goes here
	SubnetFile   string // <run-dir>/flannel/subnet.env
	CNIConfDir   string
	CNIIPAMDir   string
}

// Network is a running flannel network.
type Network struct {
	// Subnets are the node's pod ranges, one per family of the cluster.
	Subnets []*net.IPNet
	MTU     int
}

// Prepared is flannel before its lease: the subnet manager, whose node
// informer has synced. It needs only the API, so a node makes it while its
// kubelet registers, and leases its podCIDR the moment one is assigned.
type Prepared struct {
	cfg    Config
	sm     subnet.Manager
	netCfg *subnet.Config
	tm     *iptables.IPTablesManager
}

// Prepare writes flannel's network configuration, makes its subnet
// manager and sets up the forward rules, which need only the cluster's
// ranges; ctx bounds the manager's node informer and the rules' upkeep, so
// it must outlive the network Start runs.
func Prepare(ctx context.Context, cfg Config) (*Prepared, error) {
	netConf, err := json.Marshal(netConfig(cfg.ClusterCIDRs, cfg.Backend))
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(cfg.ConfDir, "flannel-net-conf.json")
	if err := os.MkdirAll(cfg.ConfDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(confPath, netConf, 0o600); err != nil {
		return nil, err
	}
	sm, err := newSubnetManager(ctx, cfg.NodeName, cfg.Kubeconfig, confPath)
	if err != nil {
		return nil, fmt.Errorf("flannel subnet manager: %w", err)
	}
	netCfg, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("flannel network configuration: %w", err)
	}
	tm := &iptables.IPTablesManager{}
	if err := tm.Init(ctx); err != nil {
		return nil, fmt.Errorf("flannel iptables: %w", err)
	}
	// Each rule costs an iptables exec or two: done here, they are off
	// the path from the podCIDR to the pod network.
	tm.SetupAndEnsureForwardRules(ctx, netCfg.Network, netCfg.IPv6Network, 60)
	return &Prepared{cfg: cfg, sm: leaseWhenCached{sm}, netCfg: netCfg, tm: tm}, nil
}

// Start runs flannel until ctx ends: it takes the node's podCIDR as its
// lease, sets up the backend and masquerading, writes the subnet file, and
// keeps routes to other nodes current. The caller has seen the node's
// podCIDR assigned, and writes the CNI configuration (WriteConflist with
// the Network's subnets and MTU) when pods may start.
func (p *Prepared) Start(ctx context.Context) (*Network, error) {
	cfg, sm, netCfg, tm := p.cfg, p.sm, p.netCfg, p.tm
	ext, err := externalInterface(cfg.Iface, cfg.NodeIPs, netCfg.EnableIPv4, netCfg.EnableIPv6)
	if err != nil {
		return nil, err
	}
	be, err := backend.NewManager(ctx, sm, ext).GetBackend(netCfg.BackendType)
	if err != nil {
		return nil, fmt.Errorf("flannel backend %s: %w", netCfg.BackendType, err)
	}
	var wg sync.WaitGroup
	bn, err := be.RegisterNetwork(ctx, &wg, netCfg)
	if err != nil {
		return nil, fmt.Errorf("flannel %s network: %w; `kubox check-config` tells what the kernel lacks", netCfg.BackendType, err)
	}
	own := bn.Lease()
	// flannel removes the masquerade rules of a previous run whose
	// network or subnet differ from the current ones. The subnet file
	// says what that run's were; with no file, no run of this node left
	// rules, and the current ones stand in (nothing to remove: each
	// removal would be an iptables exec that finds nothing).
	prev := previousRanges(cfg.SubnetFile)
	if prev.network.Empty() {
		prev.network, prev.subnet = netCfg.Network, own.Subnet
	}
	if prev.network6.Empty() {
		prev.network6, prev.subnet6 = netCfg.IPv6Network, own.IPv6Subnet
	}
	if err := tm.SetupAndEnsureMasqRules(ctx, netCfg.Network, prev.subnet, prev.network, netCfg.IPv6Network, prev.subnet6, prev.network6, own, 60, false); err != nil {
		return nil, fmt.Errorf("flannel masquerade rules: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.SubnetFile), 0o755); err != nil {
		return nil, err
	}
	if err := subnet.WriteSubnetFile(cfg.SubnetFile, netCfg, true, own.Subnet, own.IPv6Subnet, bn.MTU()); err != nil {
		return nil, fmt.Errorf("writing %s: %w", cfg.SubnetFile, err)
	}
	// The node's ranges in the cluster's order, so the primary family's
	// is the pods' first address.
	var podNets []*net.IPNet
	for _, c := range cfg.ClusterCIDRs {
		if c.IP.To4() != nil {
			podNets = append(podNets, own.Subnet.ToIPNet())
		} else {
			podNets = append(podNets, own.IPv6Subnet.ToIPNet())
		}
	}
	go bn.Run(ctx)
	return &Network{Subnets: podNets, MTU: bn.MTU()}, nil
}

// ranges are the pod network's ranges and the node's subnets as a subnet
// file states them; a family the file does not state is empty.
type ranges struct {
	network, subnet   ip.IP4Net
	network6, subnet6 ip.IP6Net
}

// previousRanges reads the subnet file a previous run wrote
// (subnet.WriteSubnetFile: FLANNEL_NETWORK=10.42.0.0/16,
// FLANNEL_SUBNET=10.42.0.1/24, and the FLANNEL_IPV6_ pair). A family is
// left empty unless both its lines parse.
func previousRanges(path string) ranges {
	var r ranges
	data, err := os.ReadFile(path)
	if err != nil {
		return r
	}
	vals := map[string]*net.IPNet{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		if _, n, err := net.ParseCIDR(v); err == nil {
			vals[k] = n
		}
	}
	if n, s := vals["FLANNEL_NETWORK"], vals["FLANNEL_SUBNET"]; n != nil && s != nil {
		r.network, r.subnet = ip.FromIPNet(n), ip.FromIPNet(s)
	}
	if n, s := vals["FLANNEL_IPV6_NETWORK"], vals["FLANNEL_IPV6_SUBNET"]; n != nil && s != nil {
		r.network6, r.subnet6 = ip.FromIP6Net(n), ip.FromIP6Net(s)
	}
	return r
}

// netConfig is flannel's network configuration (net-conf.json): a range
// per family of the cluster.
func netConfig(clusterCIDRs []*net.IPNet, backend string) map[string]any {
	conf := map[string]any{"EnableIPv4": false, "EnableIPv6": false, "Backend": backendConf(backend)}
	for _, c := range clusterCIDRs {
		if c.IP.To4() != nil {
			conf["Network"], conf["EnableIPv4"] = c.String(), true
		} else {
			conf["IPv6Network"], conf["EnableIPv6"] = c.String(), true
		}
	}
	return conf
}

// backendConf is flannel's configuration of kubox's backend:
// wireguard-native is flannel's wireguard backend, which uses the kernel's
// WireGuard, with keepalives (seconds) so that a node behind NAT stays
// reachable.
func backendConf(backend string) map[string]any {
	if backend == "wireguard-native" {
		return map[string]any{"Type": "wireguard", "PersistentKeepaliveInterval": 25}
	}
	return map[string]any{"Type": backend}
}

// externalInterface finds the interface flannel sends overlay traffic on:
// the named one, or the one holding the node's primary IP; with its
// address of each family the pod network has (v4, v6). The node's own
// address of a family is the one other nodes reach it at, unless an
// interface is named.
func externalInterface(name string, nodeIPs []net.IP, v4, v6 bool) (*backend.ExternalInterface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var primary net.IP
	if len(nodeIPs) > 0 {
		primary = nodeIPs[0]
	}
	for i := range ifaces {
		ifc := &ifaces[i]
		addrs := ipAddrs(ifc)
		if (name != "" && ifc.Name != name) || (name == "" && !hasIP(addrs, primary)) {
			continue
		}
		ext := &backend.ExternalInterface{Iface: ifc, IfaceName: ifc.Name}
		if v4 {
			if ext.IfaceAddr, ext.ExtAddr = familyAddr(addrs, nodeIPs, false, name != ""); ext.IfaceAddr == nil {
				if name != "" {
					return nil, fmt.Errorf("--flannel-iface %s: no such interface with an IPv4 address", name)
				}
				return nil, fmt.Errorf("interface %s of the node IP %s has no IPv4 address; add one, or set --node-ip or --flannel-iface", ifc.Name, primary)
			}
		}
		if v6 {
			if ext.IfaceV6Addr, ext.ExtV6Addr = familyAddr(addrs, nodeIPs, true, name != ""); ext.IfaceV6Addr == nil {
				return nil, fmt.Errorf("interface %s has no global or ULA IPv6 address for the dual-stack pod network: add one, or set --flannel-iface", ifc.Name)
			}
		}
		return ext, nil
	}
	if name != "" {
		return nil, fmt.Errorf("--flannel-iface %s: no such interface with an IPv4 address", name)
	}
	return nil, fmt.Errorf("no interface holds the node IP %s; set --node-ip or --flannel-iface", primary)
}

// familyAddr picks an interface's address of one family (IPv4 in four
// bytes, as flannel writes it into devices and annotations) and the
// address other nodes reach it at: the node's IP of that family, unless an
// interface was named (byName), then the interface's own.
func familyAddr(addrs, nodeIPs []net.IP, v6, byName bool) (iface, ext net.IP) {
	var node net.IP
	for _, ip := range nodeIPs {
		if (ip.To4() == nil) == v6 {
			node = ip
			break
		}
	}
	for _, a := range addrs {
		if (a.To4() == nil) != v6 || (v6 && !a.IsGlobalUnicast()) {
			continue
		}
		if iface == nil || a.Equal(node) {
			iface = a
		}
	}
	if iface == nil {
		return nil, nil
	}
	ext = iface
	if node != nil && !byName {
		ext = node
	}
	if !v6 {
		return iface.To4(), ext.To4()
	}
	return iface, ext
}

func ipAddrs(ifc *net.Interface) []net.IP {
	addrs, _ := ifc.Addrs()
	var out []net.IP
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out = append(out, ipn.IP)
		}
	}
	return out
}

func hasIP(addrs []net.IP, ip net.IP) bool {
	for _, a := range addrs {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

// nodeNameEnv guards the process's NODE_NAME: flannel's Kubernetes subnet
// manager learns its node from it, once, when it is made, and offers no
// other way. Two nodes started in one process (tests) take turns.
var nodeNameEnv sync.Mutex

func newSubnetManager(ctx context.Context, nodeName, kubeconfig, confPath string) (subnet.Manager, error) {
	nodeNameEnv.Lock()
	defer nodeNameEnv.Unlock()
	old, had := os.LookupEnv("NODE_NAME")
	os.Setenv("NODE_NAME", nodeName)
	defer func() {
		if had {
			os.Setenv("NODE_NAME", old)
		} else {
			os.Unsetenv("NODE_NAME")
		}
	}()
	return kube.NewSubnetManager(ctx, "", kubeconfig, "flannel.alpha.coreos.com", confPath, false)
}

// leaseWhenCached is flannel's subnet manager, whose AcquireLease reads the
// node from its informer and fails at once if the podCIDR is not there.
// The node's podCIDR was seen assigned before the lease is asked for, so
// the informer is at most an event behind: AcquireLease is tried again
// briefly instead of failing the node.
type leaseWhenCached struct{ subnet.Manager }

// cacheLag bounds how long the informer may lag the node's own watch.
const cacheLag = 10 * time.Second

func (m leaseWhenCached) AcquireLease(ctx context.Context, attrs *lease.LeaseAttrs) (*lease.Lease, error) {
	deadline := time.Now().Add(cacheLag)
	for {
		l, err := m.Manager.AcquireLease(ctx, attrs)
		// flannel's wording: "node %q pod cidr not assigned".
		if err == nil || !strings.Contains(err.Error(), "pod cidr not assigned") || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
