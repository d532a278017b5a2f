package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// smallResult: the whole kubox node under a memory limit, as on a small
// board: it must come up, run its pods and stay Ready with nothing killed.
type smallResult struct {
	LimitMB      float64 `json:"limit_mb"`
	Pods         int     `json:"pods"`
	HeldS        float64 `json:"held_s"`
	PeakMB       float64 `json:"peak_mb"`        // the cgroup's highest usage, page cache included
	PeakSampleMB float64 `json:"peak_sample_mb"` // highest usage less inactive file cache, sampled every 5 s
	OOMKills     int64   `json:"oom_kills"`
	NodeReadyS   float64 `json:"node_ready_s"`
	Restarts     int32   `json:"pod_restarts"`
	OK           bool    `json:"ok"`
	Failure      string  `json:"failure,omitempty"`
}

// memLimit sets the cgroup's memory limit (v1 limit_in_bytes, v2 max);
// 0 lifts it.
func (c *cgroup) memLimit(bytes int64) error {
	if c.memory == "" {
		return fmt.Errorf("no memory cgroup to limit")
	}
	if _, err := os.Stat(filepath.Join(c.memory, "memory.limit_in_bytes")); err == nil {
		v := "-1"
		if bytes > 0 {
			v = strconv.FormatInt(bytes, 10)
		}
		return os.WriteFile(filepath.Join(c.memory, "memory.limit_in_bytes"), []byte(v), 0o644)
	}
	v := "max"
	if bytes > 0 {
		v = strconv.FormatInt(bytes, 10)
	}
	return os.WriteFile(filepath.Join(c.memory, "memory.max"), []byte(v), 0o644)
}

// memPeak is the cgroup's highest usage since it was made (or reset).
func (c *cgroup) memPeak() float64 {
	for _, f := range []string{"memory.max_usage_in_bytes", "memory.peak"} {
		if v, err := readInt(filepath.Join(c.memory, f)); err == nil {
			return mb(v)
		}
	}
	return 0
}

// resetPeak starts the peak afresh where the kernel allows it (v1).
func (c *cgroup) resetPeak() {
	_ = os.WriteFile(filepath.Join(c.memory, "memory.max_usage_in_bytes"), []byte("0"), 0o644)
}

// oomKills counts the processes the kernel killed for the cgroup's limit.
func (c *cgroup) oomKills() int64 {
	for _, f := range []string{"memory.oom_control", "memory.events"} {
		data, err := os.ReadFile(filepath.Join(c.memory, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return n
			}
		}
	}
	return 0
}

// measureSmall starts kubox on empty state in its cgroup limited to
// limitMB, runs n pods, and checks every 5 s for hold that the node stays
// Ready, the pods Running and unrestarted, and nothing OOM-killed. The
// limit is lifted and the node wiped after.
func measureSmall(ctx context.Context, t target, image string, limitMB float64, n int, hold time.Duration) (*smallResult, error) {
	r := &smallResult{LimitMB: limitMB, Pods: n}
	cg := t.Cgroup()
	if err := t.Wipe(); err != nil {
		return nil, err
	}
	if err := cg.memLimit(int64(limitMB * (1 << 20))); err != nil {
		return nil, fmt.Errorf("memory limit: %w", err)
	}
	defer func() { _ = cg.memLimit(0) }()
	defer t.Wipe()
	cg.resetPeak()
	kills0 := cg.oomKills()
	failed := func(format string, args ...any) (*smallResult, error) {
		r.Failure = fmt.Sprintf(format, args...)
		r.PeakMB, r.OOMKills = cg.memPeak(), cg.oomKills()-kills0
		return r, nil
	}
	st, err := measureStart(ctx, t, startOpts{}, image, true, 0)
	if err != nil {
		return failed("start: %v", err)
	}
	r.NodeReadyS = st.NodeReady
	cs, err := clientFor(t.Kubeconfig(), t.APIURL(), 50)
	if err != nil {
		return nil, err
	}
	if _, err := measurePods(ctx, cs, image, n, "bench-small"); err != nil {
		return failed("pods: %v", err)
	}
	t0 := time.Now()
	for time.Since(t0) < hold {
		if err := sleepCtx(ctx, 5*time.Second); err != nil {
			return nil, err
		}
		if s, err := sampleMemory(cg); err == nil {
			r.PeakSampleMB = max(r.PeakSampleMB, s.WorkingSetMB)
		}
		r.HeldS = time.Since(t0).Seconds()
		if k := cg.oomKills() - kills0; k > 0 {
			return failed("%d processes OOM-killed after %.0f s", k, r.HeldS)
		}
		if why := smallNodeProblem(ctx, cs, n, &r.Restarts); why != "" {
			return failed("after %.0f s: %s", r.HeldS, why)
		}
	}
	r.PeakMB, r.OOMKills = cg.memPeak(), cg.oomKills()-kills0
	r.OK = r.OOMKills == 0
	return r, nil
}

// smallNodeProblem says what is wrong with the node or its n pods, "" if
// nothing; restarts gets the pods' container restarts.
func smallNodeProblem(ctx context.Context, cs *kubernetes.Clientset, n int, restarts *int32) string {
	node, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("API: %v", err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return "node not Ready"
	}
	pods, err := cs.CoreV1().Pods("bench-small").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("API: %v", err)
	}
	running := 0
	*restarts = 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
		for _, c := range p.Status.ContainerStatuses {
			*restarts += c.RestartCount
		}
	}
	if running != n {
		return fmt.Sprintf("%d of %d pods Running", running, n)
	}
	if *restarts > 0 {
		return fmt.Sprintf("%d container restarts", *restarts)
	}
	return ""
}
