package cli

import (
	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
)

// nodeFlags are the node settings `kubox server` and `kubox agent` share.
// The slice flags land in the returned holder; take them with values.
func nodeFlags(ao *config.AgentOptions) ([]ucli.Flag, *nodeSlices) {
	ns := &nodeSlices{ucli.NewStringSlice(), ucli.NewStringSlice(), ucli.NewStringSlice(), ucli.NewStringSlice(), ucli.NewStringSlice()}
	return []ucli.Flag{
		&ucli.StringFlag{Name: "node-name", EnvVars: []string{"KUBOX_NODE_NAME"}, Destination: &ao.NodeName, Usage: "node name (default: hostname)"},
		&ucli.StringFlag{Name: "node-ip", Destination: &ao.NodeIP, Usage: "node IP, or an IPv4 and an IPv6 one for dual-stack (default: the primary address, and in a dual-stack cluster an IPv6 one on its interface)"},
		&ucli.StringSliceFlag{Name: "node-external-ip", Destination: ns.externalIPs,
			Usage: "the node's external address, shown as its ExternalIP and used by servicelb (repeatable or comma-separated)"},
		&ucli.StringSliceFlag{Name: "node-label", Destination: ns.labels, Usage: "node label key=value (repeatable)"},
		&ucli.StringSliceFlag{Name: "node-taint", Destination: ns.taints, Usage: "node taint key=value:Effect (repeatable)"},
		&ucli.StringSliceFlag{Name: "kubelet-arg", Destination: ns.kubelet, Usage: "extra kubelet flag as name=value (repeatable)"},
		&ucli.StringSliceFlag{Name: "kube-proxy-arg", Destination: ns.proxy, Usage: "extra kube-proxy flag as name=value, e.g. proxy-mode=nftables (repeatable)"},
		&ucli.StringFlag{Name: "flannel-iface", Destination: &ao.FlannelIface, Usage: "interface for the pod network between nodes"},
		&ucli.StringFlag{Name: "default-local-storage-path", Destination: &ao.DefaultLocalStoragePath, Usage: "directory of local-path volumes (default <data-dir>/storage)"},
		&ucli.BoolFlag{Name: "protect-kernel-defaults", Destination: &ao.ProtectKernelDefaults,
			Usage: "refuse to start unless the kernel parameters the kubelet needs are set already (the kubelet then changes none)"},
		&ucli.BoolFlag{Name: "disable-network-policy", Destination: &ao.DisableNetworkPolicy,
			Usage: "enforce no NetworkPolicies on this node (they are enforced by default, with iptables and ipset)"},
		&ucli.StringFlag{Name: "private-registry", Destination: &ao.PrivateRegistry,
			Usage: "registries.yaml (k3s's format): mirrors, rewrites, credentials and TLS of image registries, read at start (default " + config.DefaultPrivateRegistry + ", if it exists)"},
		&ucli.StringFlag{Name: "resolv-conf", Destination: &ao.ResolvConf, Usage: "resolv.conf for pods (default /etc/resolv.conf)"},
	}, ns
}

type nodeSlices struct{ labels, taints, kubelet, proxy, externalIPs *ucli.StringSlice }

// into copies the repeatable flags' values into ao.
func (ns *nodeSlices) into(ao *config.AgentOptions) {
	ao.NodeLabels, ao.NodeTaints = ns.labels.Value(), ns.taints.Value()
	ao.KubeletArgs, ao.KubeProxyArgs = ns.kubelet.Value(), ns.proxy.Value()
	ao.NodeExternalIPs = ns.externalIPs.Value()
}
