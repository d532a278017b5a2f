// Package netpol enforces NetworkPolicies on the node it runs on with
// kube-router's network policy controller, run in-process. The controller
// watches pods, namespaces and policies, and programs the filter table
// through iptables-restore and ipsets through the ipset tool: it owns the
// chains KUBE-ROUTER-INPUT/FORWARD/OUTPUT (jumped to from the built-in
// chains), KUBE-NWPLCY-* and KUBE-POD-FW-*, and the ipsets KUBE-SRC-* and
// KUBE-DST-*, and touches nothing else. Only this package imports
// kube-router; ipsets.go gives the controller ipset handlers that mend
// v2.1.0's dual-stack faults.
package netpol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// DefaultSyncPeriod is how often the rules are rebuilt whole; every change
// of a pod, namespace or policy rebuilds them at once anyway.
const DefaultSyncPeriod = 5 * time.Minute

// Logger takes the line that says enforcement began; the controller
// itself logs through klog.
type Logger interface {
	Infof(string, ...any)
}

// Config says which node this is, how to reach the API and what the
// cluster's Service ranges are (traffic to them is left to kube-proxy).
// A Service range of each family makes the controller enforce policies
// for both (ip6tables and IPv6 ipsets beside the IPv4 ones).
type Config struct {
	NodeName      string
	Kubeconfig    string
	ServiceCIDRs  []*net.IPNet
	NodePortRange string // "30000-32767"
	SyncPeriod    time.Duration
	Log           Logger
}

// ChainPrefixes name the iptables chains the controller owns.
func ChainPrefixes() []string { return []string{"KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-"} }

// Tools are the host programs the controller runs; IPv6 also needs
// IPv6Tools.
var (
	Tools     = []string{"iptables", "iptables-save", "iptables-restore", "ipset"}
	IPv6Tools = []string{"ip6tables", "ip6tables-save", "ip6tables-restore"}
)

// CheckHost reports the first host program the controller needs (with
// ipv6, for IPv6 too) and cannot find.
func CheckHost(ipv6 bool) error {
	tools := Tools
	if ipv6 {
		tools = append(append([]string{}, Tools...), IPv6Tools...)
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("network policy needs %s on PATH: install it (apt-get install %s), or start kubox with --disable-network-policy",
				t, map[bool]string{true: "ipset", false: "iptables"}[t == "ipset"])
		}
	}
	return nil
}

// Run enforces NetworkPolicies for the pods of the node until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.NodeName == "" || len(cfg.ServiceCIDRs) == 0 {
		return errors.New("network policy: node name and service CIDR are required")
	}
	kr := krConfig(cfg)
	if err := CheckHost(kr.EnableIPv6); err != nil {
		return err
	}
	client, err := kubeclient.New(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	return run(ctx, cfg, kr, client)
}

func run(ctx context.Context, cfg Config, kr *options.KubeRouterConfig, client kubernetes.Interface) error {
	ipt, _, err := netpol.NewIPTablesHandlers(kr)
	if err != nil {
		return err
	}
	ipsets, err := ipSetHandlers(kr.EnableIPv4, kr.EnableIPv6)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	policies := factory.Networking().V1().NetworkPolicies().Informer()
	npc, err := netpol.NewNetworkPolicyController(ownNode(client, cfg.NodeName), kr,
		pods, policies, namespaces, &sync.Mutex{}, ipt, ipsets)
	if err != nil {
		return fmt.Errorf("network policy controller: %w", err)
	}
	for _, h := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{{pods, npc.PodEventHandler}, {namespaces, npc.NamespaceEventHandler}, {policies, npc.NetworkPolicyEventHandler}} {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("network policy: cannot list %v", typ)
		}
	}

	// The controller reports each sync on this channel and blocks until it
	// is read; kubox has no use for the beats but must take them.
	beats := make(chan *healthcheck.ControllerHeartbeat)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go npc.Run(beats, stop, &wg)
	cfg.Log.Infof("enforcing NetworkPolicies for the pods of node %s", cfg.NodeName)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-beats:
		case <-ctx.Done():
			close(stop)
			// A sync in progress ends with a beat that nobody else reads.
			for {
				select {
				case <-beats:
				case <-done:
					return nil
				}
			}
		}
	}
}

// krConfig is the part of kube-router's configuration its network policy
// controller reads.
func krConfig(cfg Config) *options.KubeRouterConfig {
	kr := options.NewKubeRouterConfig()
	kr.HostnameOverride = cfg.NodeName
	kr.ClusterIPCIDRs = nil
	kr.EnableIPv4, kr.EnableIPv6 = false, false
	for _, n := range cfg.ServiceCIDRs {
		kr.ClusterIPCIDRs = append(kr.ClusterIPCIDRs, n.String())
		if n.IP.To4() != nil {
			kr.EnableIPv4 = true
		} else {
			kr.EnableIPv6 = true
		}
	}
	kr.NodePortRange = strings.TrimSpace(cfg.NodePortRange)
	kr.IPTablesSyncPeriod = cfg.SyncPeriod
	if kr.IPTablesSyncPeriod <= 0 {
		kr.IPTablesSyncPeriod = DefaultSyncPeriod
	}
	kr.MetricsEnabled = false
	return kr
}
