package embedded

import (
	"context"
	"fmt"
	"net"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/nodeipam"
	"k8s.io/kubernetes/pkg/controller/nodeipam/ipam"
)

// NodeIPAM is upstream's node IPAM controller (kube-controller-manager's
// node-ipam-controller, range allocator) run on its own, so that a node
// gets its podCIDR as soon as it registers: inside the controller-manager
// it starts only after every other controller is built, a second or two
// after the API server is ready, and a first start's pod network waits
// for it.
type NodeIPAM struct {
	// Kubeconfig has the credentials of a user who may impersonate the
	// controller-manager's node-controller service account, whose
	// permissions the controller then has, as inside the controller-manager.
	Kubeconfig   string
	ClusterCIDRs []*net.IPNet
	// ServiceCIDRs (one per family) are kept out of the nodes' ranges.
	ServiceCIDRs []*net.IPNet
	// MaskSizes is the size of each node's range, one per cluster CIDR.
	MaskSizes []int
}

// nodeController is the service account the controller-manager gives its
// node IPAM and node lifecycle controllers.
const nodeController = "system:serviceaccount:kube-system:node-controller"

// Run runs the controller until ctx ends.
func (n NodeIPAM) Run(ctx context.Context) error {
	if len(n.MaskSizes) != len(n.ClusterCIDRs) {
		return fmt.Errorf("node IPAM: %d mask sizes for %d cluster CIDRs", len(n.MaskSizes), len(n.ClusterCIDRs))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", n.Kubeconfig)
	if err != nil {
		return fmt.Errorf("node IPAM: %w", err)
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: nodeController}
	cfg.UserAgent = "kubox-node-ipam"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("node IPAM: %w", err)
	}
	ctx = klog.NewContext(ctx, klog.Background().WithName("node-ipam"))
	factory := informers.NewSharedInformerFactory(client, 0)
	var svc, svc2 *net.IPNet
	if len(n.ServiceCIDRs) > 0 {
		svc = n.ServiceCIDRs[0]
	}
	if len(n.ServiceCIDRs) > 1 {
		svc2 = n.ServiceCIDRs[1]
	}
	c, err := nodeipam.NewNodeIpamController(ctx, factory.Core().V1().Nodes(), nil, client,
		n.ClusterCIDRs, svc, svc2, n.MaskSizes, ipam.RangeAllocatorType)
	if err != nil {
		return fmt.Errorf("node IPAM: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	c.Run(ctx)
	return nil
}
