// Package inprocess runs kubox servers inside the test process itself, to
// show that nothing in kubox is process-wide: two servers with their own
// data dirs and ports run side by side in one Go runtime.
//
// Two upstream components cannot: kube-scheduler and kube-controller-manager
// v1.37 register their configuration in component-base's process-wide
// configz registry (the controller-manager its informers' name in
// client-go's too), never release it, and fail when the name is taken. So
// the second server here runs with --disable-scheduler and
// --disable-controller-manager; everything of kubox's own, and the API
// server, runs twice.
package inprocess

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/server"
)

func TestTwoServersInOneProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kubox servers run as root")
	}
	a := start(t, "a", false)
	b := start(t, "b", true)
	ca, cb := client(t, a), client(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := ca.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-on-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.CoreV1().Namespaces().Get(ctx, "only-on-a", metav1.GetOptions{}); err == nil {
		t.Fatal("server b sees server a's namespace")
	}
	if _, err := cb.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-on-b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// a's controller-manager runs: it publishes the cluster CA into every
	// namespace; and its scheduler: it finds no node for a pod.
	waitFor(ctx, t, a, func() error {
		_, err := ca.CoreV1().ConfigMaps("only-on-a").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "only-on-a"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "kubox.local/none"}}}}
	if _, err := ca.CoreV1().Pods("only-on-a").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, a, func() error {
		p, err := ca.CoreV1().Pods("only-on-a").Get(ctx, "p", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable {
				return nil
			}
		}
		return fmt.Errorf("pod not seen by server a's scheduler: %+v", p.Status)
	})
	// b serves its own state meanwhile: kubox's components (join
	// endpoint, RBAC, manifests, certificates) run in both.
	if _, err := cb.CoreV1().ConfigMaps("only-on-b").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, b, func() error {
		_, err := cb.RbacV1().ClusterRoles().Get(ctx, "kubox:node", metav1.GetOptions{})
		return err
	})
	// Stopping a leaves b serving.
	a.stop(t)
	if _, err := cb.CoreV1().Namespaces().Get(ctx, "only-on-b", metav1.GetOptions{}); err != nil {
		t.Fatalf("server b after a stopped: %v", err)
	}
}

// waitFor polls check until it succeeds, r stops or ctx ends.
func waitFor(ctx context.Context, t *testing.T, r *running, check func() error) {
	t.Helper()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("server %s stopped: %v", r.name, r.err)
		case <-ctx.Done():
			t.Fatalf("server %s: %v", r.name, err)
		case <-time.After(time.Second):
		}
	}
}

// running is a server started by start.
type running struct {
	name string
	cfg  *config.Server
	done chan struct{} // closed when the server has stopped; err is then set
	err  error
	stop func(t *testing.T)
}

// start runs a server with its own data dir and port in this process until
// the test ends (or stop).
func start(t *testing.T, name string, second bool) *running {
	t.Helper()
	dir := t.TempDir()
	o := config.ServerOptions{
		DataDir:         filepath.Join(dir, "data"),
		ConfigDir:       filepath.Join(dir, "etc"),
		RunDir:          filepath.Join(dir, "run"),
		HTTPSPort:       freePort(t),
		BindAddress:     "127.0.0.1",
		WriteKubeconfig: filepath.Join(dir, "kubeconfig.yaml"),
		Snapshot:        config.SnapshotOptions{Disable: true},

		DisableControllerManager: second,
		DisableScheduler:         second,
	}
	cfg, _, err := o.WithNode(config.AgentOptions{DisableAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := logging.New(logf, 0, false)
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{name: name, cfg: cfg, done: make(chan struct{})}
	go func() {
		r.err = (&component.Runner{Log: log}).Run(ctx, srv.Components()...)
		close(r.done)
	}()
	var once sync.Once
	r.stop = func(t *testing.T) {
		once.Do(func() {
			cancel()
			select {
			case <-r.done:
				if r.err != nil {
					t.Errorf("server %s: %v", name, r.err)
				}
			case <-time.After(time.Minute):
				t.Errorf("server %s did not stop in a minute", name)
			}
			srv.Close()
			if t.Failed() {
				data, _ := os.ReadFile(logf.Name())
				t.Logf("server %s log:\n%s", name, data)
			}
			logf.Close()
		})
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func client(t *testing.T, r *running) kubernetes.Interface {
	t.Helper()
	c, err := kubeclient.New(r.cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := c.CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{})
		if err == nil {
			return c
		}
		select {
		case <-r.done:
			t.Fatalf("server %s stopped: %v", r.name, r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving: %v", err)
		}
		time.Sleep(time.Second)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
