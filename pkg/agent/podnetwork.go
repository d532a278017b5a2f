package agent

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/flannel"
)

// watchPodNetwork waits for the node's podCIDRs and, meanwhile, makes
// flannel's subnet manager (its node informer takes a second to sync), so
// that flannel starts the moment the node is assigned its range: its
// lease, backend and iptables rules take about a second, which overlaps
// kube-proxy's start. It hands the node's ranges and MTU to podNetwork
// through netFound, then keeps flannel running until the node stops.
func (n *node) watchPodNetwork(ctx context.Context) error {
	client, err := n.client()
	if err != nil {
		return err
	}
	prepared := make(chan error, 1)
	if n.a.FlannelBackend == "none" {
		prepared <- nil
	} else {
		go func() {
			var err error
			n.flannel, err = flannel.Prepare(ctx, n.flannelConfig())
			prepared <- err
		}()
	}
	cidrs, werr := waitPodCIDRs(ctx, client, n.a.NodeName, len(n.a.ClusterCIDRs))
	perr := <-prepared
	if ctx.Err() != nil {
		return nil // stopping
	}
	// One error, in one line: the watch's first, as it names the node.
	n.podCIDRs, n.netErr = cidrs, werr
	if n.netErr == nil {
		n.netErr = perr
	}
	if n.netErr == nil && n.flannel != nil {
		var fn *flannel.Network
		if fn, n.netErr = n.flannel.Start(ctx); n.netErr == nil {
			n.podCIDRs, n.mtu = fn.Subnets, fn.MTU
			n.log.Infof("flannel %s: pod network %s, MTU %d", n.a.FlannelBackend, config.CIDRs(fn.Subnets), fn.MTU)
		}
		if ctx.Err() != nil {
			return nil // stopping
		}
	}
	close(n.netFound)
	if n.netErr != nil {
		return n.netErr
	}
	<-ctx.Done()
	return nil
}

// waitPodCIDRs watches the node until it has a podCIDR per family of the
// cluster (a dual-stack node waits for both).
func waitPodCIDRs(ctx context.Context, client kubernetes.Interface, name string, families int) ([]*net.IPNet, error) {
	var cidrs []*net.IPNet
	err := waitNode(ctx, client, name, func(node *corev1.Node) (bool, error) {
		if len(node.Spec.PodCIDRs) < families {
			return false, nil
		}
		cidrs = nil
		for _, c := range node.Spec.PodCIDRs {
			_, cidr, err := net.ParseCIDR(c)
			if err != nil {
				return false, fmt.Errorf("node %s has an invalid podCIDR %q", name, c)
			}
			cidrs = append(cidrs, cidr)
		}
		return true, nil
	})
	return cidrs, err
}

// waitNode watches the node named name until done says so.
func waitNode(ctx context.Context, client kubernetes.Interface, name string, done func(*corev1.Node) (bool, error)) error {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return client.CoreV1().Nodes().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return client.CoreV1().Nodes().Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, cache.ToListWatcherWithWatchListSemantics(lw, client), &corev1.Node{}, nil, func(e watch.Event) (bool, error) {
		node, ok := e.Object.(*corev1.Node)
		if !ok || node.Name != name {
			return false, nil
		}
		return done(node)
	})
	return err
}

// podNetwork writes the CNI configuration for the node's pod network, once
// watchPodNetwork has started it; then it keeps running until the node
// stops. It comes after kube-proxy: pods start once the CNI configuration
// is there, and their first connection to a Service must be translated.
func (n *node) podNetwork(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-n.netFound:
	}
	if n.netErr != nil {
		return n.netErr
	}
	// With --flannel-backend none the user brings a network; kubox only
	// writes a local bridge configuration (MTU 0: the default) so that the
	// node works on its own.
	cidrs := n.podCIDRs
	if err := flannel.WriteConflist(n.p.CNIConfDir, n.p.CNIIPAMDir, cidrs, n.mtu); err != nil {
		return err
	}
	n.log.Infof("pod network %s on node %s", config.CIDRs(cidrs), n.a.NodeName)
	close(n.netReady)
	<-ctx.Done()
	return nil
}

func (n *node) flannelConfig() flannel.Config {
	return flannel.Config{
		NodeName:     n.a.NodeName,
		NodeIPs:      n.a.NodeIPs,
		Iface:        n.a.FlannelIface,
		Backend:      n.a.FlannelBackend,
		ClusterCIDRs: n.a.ClusterCIDRs,
		Kubeconfig:   n.creds.Kubeconfig,
		ConfDir:      n.p.AgentConfDir,
		SubnetFile:   n.p.FlannelSubnetFile,
		CNIConfDir:   n.p.CNIConfDir,
		CNIIPAMDir:   n.p.CNIIPAMDir,
	}
}
