package nodeaddress

import (
	"context"
	"encoding/json"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	nodecontroller "k8s.io/cloud-provider/controllers/node"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// resync is how often the controller compares every initialized node's
// addresses with its annotations: a node restarted with other addresses
// changes only its annotations.
const resync = 10 * time.Second

// Run runs the cloud node controller until ctx ends: it initializes every
// node registered with the uninitialized taint from its annotations (and
// lifts the taint), and keeps the addresses of every node current.
func Run(ctx context.Context, kubeconfig string) error {
	client, err := kubeclient.New(kubeconfig)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := nodecontroller.NewCloudNodeController(factory.Core().V1().Nodes(), client, provider{}, resync, 1, 1)
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	c.RunWithContext(ctx, controllersmetrics.NewControllerManagerMetrics("kubox"))
	return nil
}

// Logger is where Announce reports.
type Logger interface {
	Infof(string, ...any)
	Warnf(string, ...any)
}

// Node is what a node says about itself.
type Node struct {
	Name        string
	Kubeconfig  string // the node's own credential suffices
	InternalIPs []net.IP
	ExternalIPs []net.IP
	Log         Logger
}

// Annotations are the node's address annotations; no ExternalIP, no
// annotation (nil: a merge patch removes it).
func (n Node) Annotations() map[string]*string {
	in, ext := joinIPs(n.InternalIPs), joinIPs(n.ExternalIPs)
	a := map[string]*string{InternalIPAnnotation: &in, ExternalIPAnnotation: nil}
	if ext != "" {
		a[ExternalIPAnnotation] = &ext
	}
	return a
}

// Announce keeps the node's address annotations on its Node until ctx
// ends: set the moment the kubelet registers it (the node is tainted until
// then), and again whenever they go missing or differ.
func Announce(ctx context.Context, n Node) error {
	client, err := kubeclient.New(n.Kubeconfig)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", n.Name).String()
	}))
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	want := n.Annotations()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	if err != nil {
		return err
	}
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry.C:
		}
		node, err := nodes.Lister().Get(n.Name)
		if err != nil || current(node, want) {
			continue // not registered yet, or nothing to do
		}
		if _, err := client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			if ctx.Err() == nil {
				n.Log.Warnf("cannot annotate node %s with its addresses: %v", n.Name, err)
			}
			continue
		}
		n.Log.Infof("node %s states its addresses: internal %s, external %s", n.Name, joinIPs(n.InternalIPs), orNone(joinIPs(n.ExternalIPs)))
	}
}

// current tells whether node carries the annotations want.
func current(node *corev1.Node, want map[string]*string) bool {
	for k, v := range want {
		got, ok := node.Annotations[k]
		if (v == nil) == ok || (v != nil && *v != got) {
			return false
		}
	}
	return true
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
