// Package servicelb gives Services of type LoadBalancer the addresses of the
// nodes that can serve them. Each node's agent runs the controller for its
// own node: when every port of a Service is free on the node, the node adds
// its address to the Service's status.loadBalancer.ingress, and kube-proxy,
// which already forwards traffic for load-balancer ingress addresses, answers
// there. No pod per Service and no extra forwarding hop are needed.
//
// A port is taken when an older LoadBalancer Service already claims it with
// the same protocol, or when a process on the node listens on it; the node
// then stays out of the Service's ingress and says why in an Event.
package servicelb

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// resync re-checks every Service now and then, so that a port freed on the
// host is noticed without any API change.
const resync = 30 * time.Second

// Logger is where the controller reports what it does.
type Logger interface {
	Infof(string, ...any)
	Errorf(string, ...any)
}

// Config says which node this is and how to reach the API.
type Config struct {
	NodeName   string
	Kubeconfig string
	Log        Logger
	// Listening reports whether a process on the node listens on port
	// (proto "TCP", "UDP" or "SCTP") at ip or at every address. Nil reads
	// the kernel's socket tables.
	Listening func(proto string, ip net.IP, port int32) (bool, error)
}

// Run serves the node's part of every LoadBalancer Service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	client, err := kubeclient.New(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	return run(ctx, cfg, client)
}

type controller struct {
	cfg      Config
	client   kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	recorder record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[string]
}

func run(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	if cfg.NodeName == "" {
		return fmt.Errorf("servicelb needs a node name")
	}
	if cfg.Listening == nil {
		cfg.Listening = HostListening
	}
	recorder, stopEvents := kubeclient.Recorder(ctx, client, "kubox-servicelb", cfg.NodeName)
	defer stopEvents()

	factory := informers.NewSharedInformerFactory(client, resync)
	svcInf := factory.Core().V1().Services()
	nodeInf := factory.Core().V1().Nodes()
	c := &controller{
		cfg:      cfg,
		client:   client,
		services: svcInf.Lister(),
		nodes:    nodeInf.Lister(),
		recorder: recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "servicelb"}),
	}
	defer c.queue.ShutDown()

	// Any Service change may free or take a port another Service waits for,
	// and a node change may add or retire an address: both re-check all.
	all := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: func(_, _ any) { c.enqueueAll() },
		DeleteFunc: func(any) { c.enqueueAll() },
	}
	if _, err := svcInf.Informer().AddEventHandler(all); err != nil {
		return err
	}
	if _, err := nodeInf.Informer().AddEventHandler(all); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot sync the %v cache", typ)
		}
	}
	go wait.UntilWithContext(ctx, c.work, time.Second)
	<-ctx.Done()
	return nil
}

func (c *controller) enqueueAll() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if managed(s) {
			c.queue.Add(s.Namespace + "/" + s.Name)
		}
	}
}

func (c *controller) work(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, key); err != nil {
			if ctx.Err() == nil {
				c.cfg.Log.Errorf("servicelb %s: %v (retrying)", key, err)
			}
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// managed: a LoadBalancer Service that no other implementation claimed.
func managed(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.LoadBalancerClass == nil && s.DeletionTimestamp == nil
}

// sync puts this node's address into the Service's ingress or takes it out.
func (c *controller) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if !managed(svc) {
		return nil
	}
	node, err := c.nodes.Get(c.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		return nil // not registered yet; the node's Add event brings us back
	} else if err != nil {
		return err
	}
	own := nodeAddress(node)
	if own == "" {
		return nil
	}
	all, err := c.services.List(labels.Everything())
	if err != nil {
		return err
	}
	serving := slices.ContainsFunc(svc.Status.LoadBalancer.Ingress, func(i corev1.LoadBalancerIngress) bool { return i.IP == own })
	reason := c.conflict(svc, all, net.ParseIP(own), serving)
	if reason != "" {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "PortInUse", "node %s cannot serve this Service: %s", c.cfg.NodeName, reason)
	}

	known := map[string]bool{}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if a := nodeAddress(n); a != "" {
			known[a] = true
		}
	}
	want := desiredIngress(svc.Status.LoadBalancer.Ingress, known, own, reason == "")
	if equalIngress(want, svc.Status.LoadBalancer.Ingress) {
		return nil
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !managed(cur) {
			return nil
		}
		next := desiredIngress(cur.Status.LoadBalancer.Ingress, known, own, reason == "")
		if equalIngress(next, cur.Status.LoadBalancer.Ingress) {
			return nil
		}
		cur.Status.LoadBalancer.Ingress = next
		_, err = c.client.CoreV1().Services(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if reason == "" {
		c.cfg.Log.Infof("LoadBalancer Service %s answers on %s", key, own)
	} else {
		c.cfg.Log.Infof("LoadBalancer Service %s left out on this node: %s", key, reason)
	}
	return nil
}

// conflict says why this node cannot serve svc, or "" if it can. A port an
// older Service claims is always a conflict; a process listening on the
// port is one only before the node serves the Service, since once it does
// the Service owns the port.
func (c *controller) conflict(svc *corev1.Service, all []*corev1.Service, ip net.IP, serving bool) string {
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		for _, other := range all {
			if other.UID == svc.UID || !managed(other) || !older(other, svc) {
				continue
			}
			for _, op := range other.Spec.Ports {
				oproto := string(op.Protocol)
				if oproto == "" {
					oproto = string(corev1.ProtocolTCP)
				}
				if op.Port == p.Port && oproto == proto {
					return fmt.Sprintf("port %d/%s is already used by LoadBalancer Service %s/%s", p.Port, proto, other.Namespace, other.Name)
				}
			}
		}
		if serving {
			continue
		}
		busy, err := c.cfg.Listening(proto, ip, p.Port)
		if err != nil {
			return fmt.Sprintf("cannot check port %d/%s: %v", p.Port, proto, err)
		}
		if busy {
			return fmt.Sprintf("port %d/%s is already in use by a process on the node; free the port or choose another Service port", p.Port, proto)
		}
	}
	return ""
}

// older orders Services by age, then by name, so every node resolves a
// conflict the same way.
func older(a, b *corev1.Service) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// nodeAddress is the address a node serves load balancers on: its external
// IP if it has one, else its internal IP.
func nodeAddress(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && net.ParseIP(a.Address) != nil {
				return a.Address
			}
		}
	}
	return ""
}

// desiredIngress keeps the addresses of nodes that still exist, adds or
// removes own, and sorts the result so that every node writes the same list.
func desiredIngress(cur []corev1.LoadBalancerIngress, known map[string]bool, own string, serve bool) []corev1.LoadBalancerIngress {
	var out []corev1.LoadBalancerIngress
	for _, i := range cur {
		if i.IP == "" || !known[i.IP] || i.IP == own {
			continue
		}
		out = append(out, corev1.LoadBalancerIngress{IP: i.IP})
	}
	if serve {
		out = append(out, corev1.LoadBalancerIngress{IP: own})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP < out[j].IP })
	return out
}

func equalIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname || ipMode(a[i]) != ipMode(b[i]) {
			return false
		}
	}
	return true
}

// ipMode is the entry's mode with the API's default filled in.
func ipMode(i corev1.LoadBalancerIngress) corev1.LoadBalancerIPMode {
	if i.IPMode == nil {
		return corev1.LoadBalancerIPModeVIP
	}
	return *i.IPMode
}

// Withdraw takes this node's address out of every LoadBalancer Service, for
// a node on which the add-on was turned off.
func Withdraw(ctx context.Context, cfg Config) error {
	client, err := kubeclient.New(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	return withdraw(ctx, cfg, client)
}

func withdraw(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	node, err := client.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	own := nodeAddress(node)
	svcs, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !managed(svc) || !slices.ContainsFunc(svc.Status.LoadBalancer.Ingress, func(i corev1.LoadBalancerIngress) bool { return i.IP == own }) {
			continue
		}
		svc.Status.LoadBalancer.Ingress = slices.DeleteFunc(svc.Status.LoadBalancer.Ingress, func(i corev1.LoadBalancerIngress) bool { return i.IP == own })
		if _, err := client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		cfg.Log.Infof("servicelb is disabled: LoadBalancer Service %s/%s no longer answers on %s", svc.Namespace, svc.Name, own)
	}
	return nil
}
