package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apiOp is the outcome of one verb over all objects.
type apiOp struct {
	PerSecond float64 `json:"objects_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "api"}},
		Data:       map[string]string{"payload": strings.Repeat("k", 128)},
	}
}

// parallel runs f(i) for i in [0,n) on conc workers and returns each
// call's latency and the wall time.
func parallel(ctx context.Context, n, conc int, f func(i int) error) ([]float64, time.Duration, error) {
	lat := make([]float64, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := time.Now()
				err := f(i)
				lat[i] = float64(time.Since(s).Microseconds()) / 1000
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return lat, time.Since(t0), firstErr
}

func opOf(lat []float64, wall time.Duration) apiOp {
	return apiOp{PerSecond: float64(len(lat)) / wall.Seconds(), P50ms: percentile(lat, 50), P99ms: percentile(lat, 99)}
}

// measureAPI creates, gets, lists and deletes n ConfigMaps in namespace ns
// with conc concurrent callers, or only creates them if createsOnly. The
// list is one call returning all n.
func measureAPI(ctx context.Context, cs *kubernetes.Clientset, n, conc int, ns string, createsOnly bool) (map[string]apiOp, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	name := func(i int) string { return fmt.Sprintf("cm-%05d", i) }
	out := map[string]apiOp{}
	lat, wall, err := parallel(ctx, n, conc, func(i int) error {
		_, err := cms.Create(ctx, configMap(name(i)), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	out["create"] = opOf(lat, wall)
	if createsOnly {
		return out, nil
	}
	lat, wall, err = parallel(ctx, n, conc, func(i int) error {
		_, err := cms.Get(ctx, name(i), metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	out["get"] = opOf(lat, wall)
	s := time.Now()
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if got := countBench(list); got != n {
		return nil, fmt.Errorf("list returned %d of the bench's ConfigMaps, want %d", got, n)
	}
	d := time.Since(s)
	out["list"] = apiOp{PerSecond: float64(n) / d.Seconds(), P50ms: float64(d.Microseconds()) / 1000, P99ms: float64(d.Microseconds()) / 1000}
	lat, wall, err = parallel(ctx, n, conc, func(i int) error {
		return cms.Delete(ctx, name(i), metav1.DeleteOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	out["delete"] = opOf(lat, wall)
	return out, nil
}

// measureLists fills one namespace to each size in sizes (ascending) and
// lists it reps times at each, returning the list latencies in ms by size.
func measureLists(ctx context.Context, cs *kubernetes.Clientset, sizes []int, reps int, ns string) (map[int][]float64, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	sort.Ints(sizes)
	out := map[int][]float64{}
	have := 0
	for _, size := range sizes {
		from := have
		// Filling is not measured: as many callers as the server takes.
		if _, _, err := parallel(ctx, size-from, 64, func(i int) error {
			_, err := cms.Create(ctx, configMap(fmt.Sprintf("cm-%05d", from+i)), metav1.CreateOptions{})
			return err
		}); err != nil {
			return nil, fmt.Errorf("filling to %d: %w", size, err)
		}
		have = size
		for r := 0; r < reps; r++ {
			s := time.Now()
			list, err := cms.List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			if got := countBench(list); got != size {
				return nil, fmt.Errorf("list returned %d of the bench's ConfigMaps, want %d", got, size)
			}
			out[size] = append(out[size], float64(time.Since(s).Microseconds())/1000)
		}
	}
	return out, nil
}

// countBench counts the bench's own ConfigMaps in a list (every namespace
// also holds kube-root-ca.crt).
func countBench(list *corev1.ConfigMapList) int {
	n := 0
	for _, cm := range list.Items {
		if cm.Labels["bench"] == "api" {
			n++
		}
	}
	return n
}
