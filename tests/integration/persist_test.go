package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkDurability: state survives a clean restart, and a kill -9 in the
// middle of a stream of writes loses none that were acknowledged.
func checkDurability(t *testing.T, s *server) {
	ctx := context.Background()
	c := s.Client()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "durable"}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	keep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "durable"}, Data: map[string]string{"k": "v"}}
	if _, err := c.CoreV1().ConfigMaps("durable").Create(ctx, keep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Clean restart.
	s.Stop()
	if code := s.ExitCode(); code != 0 {
		t.Fatalf("SIGTERM: exit code %d, want 0", code)
	}
	s.StartReady()
	c = s.Client()
	got, err := c.CoreV1().ConfigMaps("durable").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Fatalf("after restart: data %v", got.Data)
	}

	// Writers keep going while the server is killed; every write the API
	// acknowledged must be there afterwards.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "durable"}, Data: map[string]string{"i": name}}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := c.CoreV1().ConfigMaps("durable").Create(cctx, cm, metav1.CreateOptions{})
				cancel()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}(w)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 60s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill() // writes are in flight right now
	close(stop)
	wg.Wait()

	s.StartReady()
	c = s.Client()
	list, err := c.CoreV1().ConfigMaps("durable").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
	}
	var lost []string
	for _, name := range acked {
		if !have[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost after kill -9, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
	if _, err := c.CoreV1().ConfigMaps("durable").Get(ctx, "nonexistent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get of a missing object: %v, want NotFound", err)
	}
	t.Logf("%d acknowledged writes, all present after kill -9 and restart", len(acked))
}

func TestDurabilitySQLite(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	s := newServer(t)
	s.StartReady()
	checkDurability(t, s)
}
