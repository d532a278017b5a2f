package etcdmember

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Logger receives what the controller does.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Controller removes the etcd member of each server node deleted while it
// runs. Every server runs one; the first to act wins, the others find no
// member left.
type Controller struct {
	Kube kubernetes.Interface
	Etcd *clientv3.Client
	Log  Logger
}

// Run watches nodes until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.Kube, 0)
	nodes := factory.Core().V1().Nodes()
	deleted := make(chan string, 16)
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if n, ok := obj.(*corev1.Node); ok && n.Annotations[Annotation] != "" {
			select {
			case deleted <- n.Annotations[Annotation]:
			case <-ctx.Done():
			}
		}
	}}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())
	for {
		select {
		case <-ctx.Done():
			return nil
		case name := <-deleted:
			c.remove(ctx, nodes.Informer().GetStore(), name)
		}
	}
}

// remove takes the member out unless a node names it again (a server that
// registered anew), retrying while the cluster cannot answer.
func (c *Controller) remove(ctx context.Context, store cache.Store, name string) {
	for delay := time.Second; ctx.Err() == nil; delay = min(2*delay, 30*time.Second) {
		for _, obj := range store.List() {
			if n, ok := obj.(*corev1.Node); ok && n.Annotations[Annotation] == name {
				return
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := Remove(rctx, c.Etcd, name)
		cancel()
		switch {
		case err == nil:
			c.Log.Infof("removed etcd member %s: its server's node was deleted", name)
			return
		case errors.Is(err, ErrNotMember):
			return
		}
		c.Log.Warnf("cannot remove etcd member %s of a deleted node yet: %v; retrying in %s", name, err, delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}
