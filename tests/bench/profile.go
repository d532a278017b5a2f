package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const pprofAddr = "127.0.0.1:6060"

// profileKubox starts kubox once more on empty state with its profile
// listener on, records a CPU profile of the first 20 s (start-up), a heap
// profile, and a CPU profile under 16 concurrent creators, and writes `go
// tool pprof -top` of each next to them.
func profileKubox(ctx context.Context, o options, t target, img imagesInfo) error {
	dir := filepath.Join(o.out, "pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := t.Wipe(); err != nil {
		return err
	}
	defer t.Wipe()
	progress("kubox: profiling a first start and the idle heap")
	cpu := filepath.Join(dir, "kubox-start-cpu.pprof")
	fetch := func(url, file string, timeout time.Duration) error {
		// The listener is in the node's namespace: fetch from there.
		script := fmt.Sprintf(`for i in $(seq 200); do curl -sf -o %q %q && exit 0; sleep 0.02; done; exit 1`, file, url)
		out, err := runIn(t.Cgroup(), timeout, "sh", "-c", script)
		if err != nil {
			return fmt.Errorf("fetching %s: %v %s", url, err, out)
		}
		return nil
	}
	done := make(chan error, 1)
	opts := startOpts{Env: []string{"KUBOX_PPROF_ADDR=" + pprofAddr}}
	go func() {
		// Starts as soon as the listener answers, a few ms after exec.
		time.Sleep(10 * time.Millisecond)
		done <- fetch("http://"+pprofAddr+"/debug/pprof/profile?seconds=20", cpu, time.Minute)
	}()
	if _, err := measureStart(ctx, t, opts, img.Pause, true, 0); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	heap := filepath.Join(dir, "kubox-idle-heap.pprof")
	if err := fetch("http://"+pprofAddr+"/debug/pprof/heap", heap, time.Minute); err != nil {
		return err
	}
	creates, err := profileCreates(ctx, o, t, dir, fetch)
	if err != nil {
		return err
	}
	t.Stop()
	for _, p := range []struct{ file, args string }{
		{cpu, "-top -nodecount=40"},
		{cpu, "-top -cum -nodecount=60"},
		{heap, "-top -sample_index=inuse_space -nodecount=40"},
		{heap, "-top -cum -sample_index=inuse_space -nodecount=60"},
		{creates, "-top -nodecount=40"},
		{creates, "-top -cum -nodecount=80"},
	} {
		args := append([]string{"tool", "pprof"}, strings.Fields(p.args)...)
		args = append(args, o.kubox, p.file)
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		name := p.file + ".top.txt"
		if strings.Contains(p.args, "-cum") {
			name = p.file + ".cum.txt"
		}
		if err != nil {
			out = append(out, []byte("\n"+err.Error())...)
		}
		if err := os.WriteFile(name, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// createsProfileSeconds is shorter than 5,000 creates take at any rate
// measured here, so the profile sees the load only.
const createsProfileSeconds = 4

// profileCreates has 16 callers create o.objects ConfigMaps while it
// records a CPU profile of kubox and the CPU each process of the node, the
// bench's own clients and the whole machine used, written to
// kubox-creates-c16.txt: it shows what sets the pace of the API's writes.
func profileCreates(ctx context.Context, o options, t target, dir string, fetch func(url, file string, timeout time.Duration) error) (string, error) {
	cs, err := clientFor(t.Kubeconfig(), t.APIURL(), 5000)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "kubox-creates-c16-cpu.pprof")
	done := make(chan error, 1)
	go func() {
		done <- fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, createsProfileSeconds), file, time.Minute)
	}()
	a, t0 := snapCPU(t.Cgroup()), time.Now()
	ops, err := measureAPI(ctx, cs, o.objects, 16, "bench-profile-c16", true)
	wall := time.Since(t0).Seconds()
	b := snapCPU(t.Cgroup())
	if perr := <-done; err == nil {
		err = perr
	}
	if err != nil {
		return "", fmt.Errorf("profiling creates: %w", err)
	}
	c := ops["create"]
	summary := fmt.Sprintf("%d ConfigMap creates by 16 callers on kubox (SQLite): %.0f/s, p50 %.1f ms, p99 %.1f ms, %.1f s\n"+
		"CPU used during them, in cores (the profile beside this file covers kubox's first %d s of them):\n%s",
		o.objects, c.PerSecond, c.P50ms, c.P99ms, wall, createsProfileSeconds, cpuShare(a, b, wall))
	progress("kubox: profiled creates at c=16: %s", strings.ReplaceAll(strings.TrimSpace(summary), "\n", "; "))
	return file, os.WriteFile(filepath.Join(dir, "kubox-creates-c16.txt"), []byte(summary), 0o644)
}
