package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// podsResult: 30 pods created at once.
type podsResult struct {
	P50 float64 `json:"create_to_running_p50_s"`
	P99 float64 `json:"create_to_running_p99_s"`
	All float64 `json:"all_running_s"`
}

// measurePods creates n pods at once in a new namespace and times each
// from its create call to the watch event that shows it Running.
func measurePods(ctx context.Context, cs *kubernetes.Clientset, image string, n int, ns string) (podsResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return podsResult{}, err
	}
	// The namespace's default service account must exist before pods.
	if err := pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return podsResult{}, err
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return podsResult{}, err
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	t0 := time.Now()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%02d", i)
		go func() {
			start := time.Now()
			mu.Lock()
			created[name] = start
			mu.Unlock()
			_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(name, image), metav1.CreateOptions{})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			return podsResult{}, fmt.Errorf("creating pods: %w", err)
		}
	}
	running := map[string]time.Duration{}
	for len(running) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return podsResult{}, fmt.Errorf("pod watch ended with %d of %d Running", len(running), n)
			}
			if ev.Type == watch.Error {
				return podsResult{}, fmt.Errorf("pod watch: %v", ev.Object)
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Status.Phase != corev1.PodRunning {
				continue
			}
			if _, seen := running[p.Name]; !seen {
				mu.Lock()
				running[p.Name] = time.Since(created[p.Name])
				mu.Unlock()
			}
		case <-ctx.Done():
			return podsResult{}, fmt.Errorf("%d of %d pods Running after 3 minutes", len(running), n)
		}
	}
	all := time.Since(t0)
	var ds []float64
	for _, d := range running {
		ds = append(ds, d.Seconds())
	}
	return podsResult{P50: percentile(ds, 50), P99: percentile(ds, 99), All: all.Seconds()}, nil
}
