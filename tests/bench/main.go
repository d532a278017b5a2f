// Command bench measures kubox against upstream Kubernetes run the usual
// way (kubeadm's layout: etcd and five separate processes, with containerd
// and runc), on this machine, in one run: start-up, idle memory, API
// throughput, pod start-up, datastore growth and size on disk; and the API
// of three kubox servers on embedded etcd beside one on SQLite. Each node
// runs alone in a network namespace and a cgroup of its own; runs of the
// targets alternate so that ratios compare runs made side by side.
//
//	make bench   (builds everything, then runs this as root)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubox-io/kubox/pkg/images"
	"github.com/kubox-io/kubox/tests/testenv"
)

type options struct {
	kubox      string
	binDir     string
	payloadBin string
	work       string
	out        string
	runs       int
	idle       time.Duration
	objects    int
	pods       int
	updates    int
	listSizes  []int
	targets    map[string]bool
	compact    time.Duration
	profile    bool
	smallMB    float64       // memory limit for the small-hardware run, 0 for none
	smallPods  int           // pods the small-hardware node runs
	smallHold  time.Duration // how long it must stay Ready
	readme     string        // README whose results block is replaced, "" for none
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == datastoreLoadCmd {
		os.Exit(datastoreLoadMain(os.Args[2:]))
	}
	var o options
	var targets string
	flag.StringVar(&o.kubox, "kubox", "bin/kubox", "kubox binary")
	flag.StringVar(&o.binDir, "baseline-bin", "build/bench/bin", "kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and containerd")
	flag.StringVar(&o.payloadBin, "payload-bin", "build/payload/bin", "runc, containerd-shim-runc-v2, CNI plugins, pause, coredns and crictl")
	flag.StringVar(&o.work, "work", "build/bench/work", "scratch directory for the nodes' state")
	flag.StringVar(&o.out, "out", "results", "where the results go")
	flag.IntVar(&o.runs, "runs", 5, "runs of each target (the median is reported)")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "idle time before memory is sampled")
	flag.IntVar(&o.objects, "objects", 5000, "ConfigMaps per API run")
	flag.IntVar(&o.pods, "pods", 30, "pods created at once")
	flag.IntVar(&o.updates, "updates", 100000, "updates of one ConfigMap for the datastore growth")
	flag.DurationVar(&o.compact, "compact-interval", 15*time.Second, "datastore compaction interval during the datastore growth phase")
	flag.StringVar(&targets, "targets", "kubox,kubox-etcd,baseline,kubox-ha,kubox-agent", "targets to run")
	flag.Float64Var(&o.smallMB, "small-limit-mib", 512, "memory limit (MiB) of the cgroup kubox's whole node runs in for the small-hardware run; 0 skips it")
	flag.IntVar(&o.smallPods, "small-pods", 10, "pods the small-hardware node runs")
	flag.DurationVar(&o.smallHold, "small-hold", 5*time.Minute, "how long the small-hardware node must stay Ready with its pods")
	flag.BoolVar(&o.profile, "profile", true, "also capture kubox's start-up CPU and idle heap profiles")
	flag.StringVar(&o.readme, "readme", "", "also put the results table into this README, between its "+readmeStart+" markers")
	reportOnly := flag.Bool("report-only", false, "measure nothing: render results.md and the chart again from results.json, with the sizes of the files as they are now (e.g. after make release)")
	flag.Parse()
	o.listSizes = []int{5000, 20000}
	o.targets = map[string]bool{}
	for _, t := range strings.Split(targets, ",") {
		o.targets[strings.TrimSpace(t)] = true
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	do := run
	if *reportOnly {
		do = func(_ context.Context, o options) error { return rerender(o) }
	}
	if err := do(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Printf("%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the nodes need network namespaces, mounts and cgroups")
	}
	for _, p := range []*string{&o.kubox, &o.binDir, &o.payloadBin, &o.work, &o.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	need := []string{o.kubox, filepath.Join(o.payloadBin, "runc")}
	if o.targets["baseline"] {
		need = append(need, filepath.Join(o.binDir, "kube-apiserver"))
	}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s missing: run `make bench`, which builds it", f)
		}
	}
	unlock, err := lockNodes()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.RemoveAll(o.work); err != nil {
		return err
	}
	logDir := filepath.Join(o.out, "logs")
	if err := os.RemoveAll(logDir); err != nil {
		return err
	}
	for _, d := range []string{o.work, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pause, err := images.Pause(o.payloadBin)
	if err != nil {
		return err
	}
	coredns, err := images.CoreDNS(o.payloadBin)
	if err != nil {
		return err
	}
	img := imagesInfo{Pause: pause.Ref, CoreDNS: coredns.Ref}

	progress("network namespace %s, node address %s", netnsName, nodeIP)
	env, err := setupNet(o.work)
	if err != nil {
		return err
	}
	defer env.teardown()
	if o.targets["kubox-ha"] || o.targets["kubox-agent"] {
		progress("bridge %s, network namespaces %s…%s for the kubox-ha servers and kubox-agent's two nodes", haBridge, haNetns(1), haNetns(haServers))
		teardown, err := setupHANet()
		if err != nil {
			return err
		}
		defer teardown()
	}

	res := newResults(o)
	var all []target
	cleanup := func() {
		for _, t := range all {
			if err := t.Wipe(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
			}
			t.Cgroup().remove()
			if a, ok := t.(*agentTarget); ok {
				a.close()
			}
		}
	}
	defer cleanup()
	mk := func(name string) (target, error) {
		cg, err := newCgroup("kbxbench-" + name)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(o.work, name)
		logs := filepath.Join(logDir, name)
		var t target
		switch name {
		case "kubox":
			t = newKubox(name, "kubox (SQLite)", o.kubox, dir, logs, cg, nil)
		case "kubox-etcd":
			e, err := newEtcd(filepath.Join(o.binDir, "etcd"), filepath.Join(dir, "etcd"), logs)
			if err != nil {
				return nil, err
			}
			t = newKubox(name, "kubox (etcd)", o.kubox, filepath.Join(dir, "kubox"), logs, cg, e)
		case "baseline":
			t, err = newBaseline(o.binDir, o.payloadBin, o.kubox, dir, logs, cg, img)
			if err != nil {
				cg.remove()
				return nil, err
			}
		case "kubox-ha":
			t = newKuboxHA(o.kubox, dir, logs, cg)
		case "kubox-agent":
			t, err = newKuboxAgent(o.kubox, filepath.Join(o.work, "agent-bin", "kubox"), dir, logs, cg)
			if err != nil {
				cg.remove()
				return nil, err
			}
		}
		return t, nil
	}
	for _, name := range []string{"kubox", "baseline", "kubox-etcd", "kubox-ha", "kubox-agent"} {
		if !o.targets[name] {
			continue
		}
		t, err := mk(name)
		if err != nil {
			return err
		}
		all = append(all, t)
		res.target(t)
	}
	if len(all) == 0 {
		return fmt.Errorf("no target selected: -targets takes kubox, kubox-etcd, baseline, kubox-ha, kubox-agent")
	}
	res.Sizes = binarySizes(o)

	// Partial results go to o.out after every run; the README gets only a
	// complete bench's table.
	save := func() {
		if err := res.write(o.out, ""); err != nil {
			fmt.Fprintln(os.Stderr, "bench: writing results:", err)
		}
	}
	began := time.Now()
	for i := 0; i < o.runs; i++ {
		for _, t := range all {
			run := oneRun
			if a, ok := t.(*agentTarget); ok {
				run = func(ctx context.Context, o options, _ target, r *targetResult, _ imagesInfo, i int) error {
					return agentRun(ctx, o, a, r, i)
				}
			}
			if err := run(ctx, o, t, res.target(t), img, i); err != nil {
				save()
				return err
			}
		}
		save()
	}
	if o.smallMB > 0 && o.targets["kubox"] {
		progress("kubox: small hardware: whole node in %.0f MiB, %d pods, held %s", o.smallMB, o.smallPods, o.smallHold)
		s, err := measureSmall(ctx, all[0], img.Pause, o.smallMB, o.smallPods, o.smallHold)
		if err != nil {
			save()
			return fmt.Errorf("small hardware: %w", err)
		}
		res.Small = s
		if s.OK {
			progress("kubox: small hardware: held %.0f s, peak %.0f MiB (working set %.0f MiB), no OOM kill", s.HeldS, s.PeakMB, s.PeakSampleMB)
		} else {
			progress("kubox: small hardware failed: %s (peak %.0f MiB)", s.Failure, s.PeakMB)
		}
		save()
	}
	if o.profile && o.targets["kubox"] {
		if err := profileKubox(ctx, o, all[0], img); err != nil {
			return err
		}
	}
	if o.readme != "" {
		if err := res.write(o.out, o.readme); err != nil {
			return err
		}
	}
	progress("measured in %s; results in %s", time.Since(began).Round(time.Second), o.out)
	return nil
}

// oneRun: first start on empty state, idle, memory, warm restart, pods,
// API, then wipe (kubox on etcd: first start and API only; kubox on three
// servers: the servers started, and API only).
func oneRun(ctx context.Context, o options, t target, r *targetResult, img imagesInfo, i int) error {
	tag := fmt.Sprintf("%s run %d/%d", t.Name(), i+1, o.runs)
	if err := t.Wipe(); err != nil {
		return err
	}
	defer t.Wipe()
	// kubox on etcd is there to separate the datastore's share of the API
	// figures, kubox on three servers to show what replication costs them;
	// their memory, restarts and pods would tell nothing the other two do
	// not, and skipping them keeps the whole bench under an hour.
	ha := t.Name() == "kubox-ha"
	apiOnly := ha || t.Name() == "kubox-etcd"
	progress("%s: first start", tag)
	if ha {
		// No node to time: the servers run the control plane only.
		t0 := time.Now()
		if err := t.Start(ctx, startOpts{}); err != nil {
			return fmt.Errorf("%s: %w\n%s", tag, err, t.Failure())
		}
		progress("%s: %d servers serving after %.1fs", tag, haServers, time.Since(t0).Seconds())
	} else {
		cold, err := measureStart(ctx, t, startOpts{}, img.Pause, true, 0)
		if err != nil {
			return err
		}
		r.Cold = append(r.Cold, cold)
		progress("%s: /readyz %.1fs, node Ready %.1fs, pod Running %.1fs, kube-system Ready %.1fs", tag, cold.Readyz, cold.NodeReady, cold.PodRunning, cold.SystemPods)
	}
	if i == 0 {
		r.DataDir = map[string]float64{}
		for label, d := range t.DataDirs() {
			r.DataDir[label] = mb(dirSize(d))
		}
	}
	if !apiOnly {
		progress("%s: idle %s, then memory", tag, o.idle)
		if err := sleepCtx(ctx, o.idle); err != nil {
			return err
		}
		m, err := sampleMemory(t.Cgroup())
		if err != nil {
			return err
		}
		r.Memory = append(r.Memory, m)
		progress("%s: RSS %.0f MiB, PSS %.0f MiB, cgroup %.0f MiB over %d processes", tag, m.RSSMB, m.PSSMB, m.CgroupMB, m.Processes)
		t.Stop()
		progress("%s: restart", tag)
		warm, err := measureStart(ctx, t, startOpts{}, img.Pause, false, 1)
		if err != nil {
			return err
		}
		r.Warm = append(r.Warm, warm)
		progress("%s: /readyz %.1fs, node Ready %.1fs, pod Running %.1fs", tag, warm.Readyz, warm.NodeReady, warm.PodRunning)
	}
	cs, err := clientFor(t.Kubeconfig(), t.APIURL(), 5000)
	if err != nil {
		return err
	}
	if !apiOnly {
		pr, err := measurePods(ctx, cs, img.Pause, o.pods, "bench-pods")
		if err != nil {
			return fmt.Errorf("%s: pods: %w", tag, err)
		}
		r.Pods = append(r.Pods, pr)
		progress("%s: %d pods: p50 %.1fs, p99 %.1fs, all Running %.1fs", tag, o.pods, pr.P50, pr.P99, pr.All)
	}
	for _, conc := range []int{1, 16} {
		// Three servers: creates only, where replication shows (each is a
		// quorum write), which keeps their runs short.
		ops, err := measureAPI(ctx, cs, o.objects, conc, fmt.Sprintf("bench-api-c%d", conc), ha)
		if err != nil {
			return fmt.Errorf("%s: API at concurrency %d: %w", tag, conc, err)
		}
		for verb, op := range ops {
			k := fmt.Sprintf("%s c=%d", verb, conc)
			r.API[k] = append(r.API[k], op)
		}
		line := fmt.Sprintf("create %.0f/s (p99 %.0f ms)", ops["create"].PerSecond, ops["create"].P99ms)
		if !ha {
			line += fmt.Sprintf(", get %.0f/s, list %.0f ms, delete %.0f/s", ops["get"].PerSecond, ops["list"].P50ms, ops["delete"].PerSecond)
		}
		progress("%s: API c=%d: %s", tag, conc, line)
	}
	if i == o.runs-1 && !ha {
		if err := finalPhases(ctx, o, t, r, img, cs); err != nil {
			return err
		}
	}
	t.Stop()
	return nil
}

// finalPhases run once per target, on the last run's node: list latency at
// 5,000 and 20,000 objects, on kubox the datastore's own pace (creates on
// its etcd API), and SQLite growth under o.updates updates.
func finalPhases(ctx context.Context, o options, t target, r *targetResult, img imagesInfo, cs *kubernetes.Clientset) error {
	progress("%s: list latency at %v objects", t.Name(), o.listSizes)
	lists, err := measureLists(ctx, cs, o.listSizes, o.runs, "bench-list")
	if err != nil {
		return fmt.Errorf("%s: lists: %w", t.Name(), err)
	}
	for size, ms := range lists {
		r.List[fmt.Sprint(size)] = ms
		progress("%s: list of %d: median %.0f ms", t.Name(), size, summarize(ms).Median)
	}
	if k, ok := t.(*kuboxTarget); ok {
		progress("%s: the datastore alone: %d creates of 1 KB keys, c=16, on its etcd API", t.Name(), o.objects)
		op, err := measureDatastore(ctx, k, o.objects, 16)
		if err != nil {
			return fmt.Errorf("%s: the datastore alone: %w", t.Name(), err)
		}
		r.Datastore = &op
		progress("%s: the datastore alone: %.0f/s (p99 %.0f ms)", t.Name(), op.PerSecond, op.P99ms)
	}
	if db, wal := t.SQLiteFiles(); db != "" {
		t.Stop()
		progress("%s: %d updates of one ConfigMap, compaction every %s", t.Name(), o.updates, o.compact)
		opts := startOpts{ExtraArgs: []string{"--datastore-compact-interval", o.compact.String()}}
		if _, err := measureStart(ctx, t, opts, img.Pause, false, 2); err != nil {
			return err
		}
		s, err := measureStore(ctx, cs, db, wal, o.updates, 1, o.compact)
		if err != nil {
			return fmt.Errorf("%s: datastore growth: %w", t.Name(), err)
		}
		r.Store = s
		progress("%s: db %.1f→%.1f MiB, WAL %.1f MiB; longest read %.0f ms, longest update %.0f ms", t.Name(),
			s.DBBeforeMB, s.DBAfterMB, s.WALAfterMB, s.ProbeMaxms, s.UpdateMaxms)
	}
	return nil
}

// lockNodes holds the host-wide lock kubox's test suites take, so that the
// bench never shares the machine with a test node (nor they with it).
func lockNodes() (func(), error) {
	f, err := os.OpenFile(testenv.NodeLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		progress("waiting for %s: a kubox test node runs on this host", testenv.NodeLock)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
	}
	return func() { f.Close() }, nil
}
