package flannel

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
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
	NodeName    string
	NodeIP      net.IP
	Iface       string // --flannel-iface; empty: the interface holding NodeIP
	Backend     string // vxlan, host-gw or wireguard-native
	ClusterCIDR *net.IPNet
	Kubeconfig  string
	ConfDir     string // net-conf.json goes here
	SubnetFile  string // <run-dir>/flannel/subnet.env
	CNIConfDir  string
	CNIIPAMDir  string
}

// Network is a running flannel network.
type Network struct {
	Subnet *net.IPNet
	MTU    int
}

// Start runs flannel until ctx ends: it takes the node's podCIDR as its
// lease, sets up the backend and masquerading, writes the subnet file and
// the CNI configuration, and keeps routes to other nodes current.
func Start(ctx context.Context, cfg Config) (*Network, error) {
	netConf, err := json.Marshal(map[string]any{
		"Network":    cfg.ClusterCIDR.String(),
		"EnableIPv4": true,
		"Backend":    backendConf(cfg.Backend),
	})
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
	ext, err := externalInterface(cfg.Iface, cfg.NodeIP)
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
	tm := &iptables.IPTablesManager{}
	if err := tm.Init(ctx); err != nil {
		return nil, fmt.Errorf("flannel iptables: %w", err)
	}
	lease := bn.Lease()
	if err := tm.SetupAndEnsureMasqRules(ctx, netCfg.Network, ip.IP4Net{}, ip.IP4Net{}, ip.IP6Net{}, ip.IP6Net{}, ip.IP6Net{}, lease, 60, false); err != nil {
		return nil, fmt.Errorf("flannel masquerade rules: %w", err)
	}
	tm.SetupAndEnsureForwardRules(ctx, netCfg.Network, ip.IP6Net{}, 60)
	if err := os.MkdirAll(filepath.Dir(cfg.SubnetFile), 0o755); err != nil {
		return nil, err
	}
	if err := subnet.WriteSubnetFile(cfg.SubnetFile, netCfg, true, lease.Subnet, ip.IP6Net{}, bn.MTU()); err != nil {
		return nil, fmt.Errorf("writing %s: %w", cfg.SubnetFile, err)
	}
	podNet := lease.Subnet.ToIPNet()
	if err := WriteConflist(cfg.CNIConfDir, cfg.CNIIPAMDir, podNet, cfg.ClusterCIDR, bn.MTU()); err != nil {
		return nil, err
	}
	go bn.Run(ctx)
	return &Network{Subnet: podNet, MTU: bn.MTU()}, nil
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
// the named one, or the one holding the node IP.
func externalInterface(name string, nodeIP net.IP) (*backend.ExternalInterface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifaces {
		ifc := &ifaces[i]
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			if (name != "" && ifc.Name == name) || (name == "" && ipn.IP.Equal(nodeIP)) {
				ip4 := ipn.IP.To4()
				ext := nodeIP
				if name != "" {
					ext = ip4
				}
				return &backend.ExternalInterface{Iface: ifc, IfaceName: ifc.Name, IfaceAddr: ip4, ExtAddr: ext.To4()}, nil
			}
		}
	}
	if name != "" {
		return nil, fmt.Errorf("--flannel-iface %s: no such interface with an IPv4 address", name)
	}
	return nil, fmt.Errorf("no interface holds the node IP %s; set --node-ip or --flannel-iface", nodeIP)
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
