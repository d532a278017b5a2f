package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// results is everything one `make bench` measured; results.json holds it
// as is, results.md and chart.png are made from it.
type results struct {
	Date     string            `json:"date"`
	Machine  map[string]string `json:"machine"`
	Versions map[string]string `json:"versions"`
	Settings map[string]string `json:"settings"`
	Targets  []*targetResult   `json:"targets"`
	Sizes    []sizeEntry       `json:"sizes"`
	Small    *smallResult      `json:"small_hardware,omitempty"`
}

type targetResult struct {
	Name    string               `json:"name"`
	Label   string               `json:"label"`
	Cold    []startTimes         `json:"first_start"`
	Warm    []startTimes         `json:"restart"`
	Memory  []memSample          `json:"idle_memory"`
	Pods    []podsResult         `json:"pods"`
	API     map[string][]apiOp   `json:"api"`
	List    map[string][]float64 `json:"list_ms"`
	Store   *storeResult         `json:"datastore_growth,omitempty"`
	DataDir map[string]float64   `json:"data_dir_mb_after_first_start"`

	// Datastore: creates at c=16 straight on the datastore's etcd API, on
	// the last run's node, idle (kubox's targets only).
	Datastore *apiOp `json:"datastore_creates_c16,omitempty"`
}

type sizeEntry struct {
	Target string  `json:"target"`
	File   string  `json:"file"`
	MB     float64 `json:"mb"`
}

func newResults(o options) *results {
	r := &results{
		Date:     time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Machine:  machine(),
		Versions: versions(o),
		Settings: map[string]string{
			"runs": fmt.Sprint(o.runs), "idle": o.idle.String(), "objects": fmt.Sprint(o.objects),
			"pods": fmt.Sprint(o.pods), "updates": fmt.Sprint(o.updates), "compact_interval": o.compact.String(),
			"small_limit_mib": fmt.Sprint(o.smallMB), "small_pods": fmt.Sprint(o.smallPods), "small_hold": o.smallHold.String(),
		},
	}
	return r
}

func (r *results) target(t target) *targetResult {
	for _, x := range r.Targets {
		if x.Name == t.Name() {
			return x
		}
	}
	x := &targetResult{Name: t.Name(), Label: t.Label(), API: map[string][]apiOp{}, List: map[string][]float64{}}
	r.Targets = append(r.Targets, x)
	return x
}

func machine() map[string]string {
	m := map[string]string{"cores": fmt.Sprint(runtime.NumCPU()), "arch": runtime.GOARCH}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %f kB", &kb)
		m["memory"] = fmt.Sprintf("%.0f GiB", kb/1024/1024)
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m["kernel"] = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		m["cgroup"] = "v2"
	} else {
		m["cgroup"] = "v1 (hybrid)"
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func versions(o options) map[string]string {
	v := map[string]string{
		"kubox":      firstLine(o.kubox, "--version"),
		"kubernetes": firstLine(filepath.Join(o.binDir, "kube-apiserver"), "--version"),
		"etcd":       firstLine(filepath.Join(o.binDir, "etcd"), "--version"),
		"containerd": firstLine(filepath.Join(o.binDir, "containerd"), "--version"),
		"runc":       firstLine(filepath.Join(o.payloadBin, "runc"), "--version"),
		"go":         runtime.Version(),
	}
	return v
}

func fileSizeMB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return math.NaN()
	}
	return mb(fi.Size())
}

// binarySizes lists what each side ships: kubox is one file (the payload
// of runc, shim, CNI plugins, pause, CoreDNS and crictl inside it); the baseline
// is the separate executables plus the same runtime pieces.
func binarySizes(o options) []sizeEntry {
	var s []sizeEntry
	add := func(t, name, path string) {
		if mbv := fileSizeMB(path); !math.IsNaN(mbv) {
			s = append(s, sizeEntry{t, name, mbv})
		}
	}
	add("kubox", "kubox (stripped executable, payload inside)", o.kubox)
	// The release file only when it was made from this kubox (no older).
	release := filepath.Join(filepath.Dir(filepath.Dir(o.kubox)), "dist", "kubox-"+runtime.GOARCH)
	if rel, err := os.Stat(release); err == nil {
		if bin, err := os.Stat(o.kubox); err == nil && !rel.ModTime().Before(bin.ModTime()) {
			add("kubox", "dist/kubox-"+runtime.GOARCH+" (release file: launcher + zstd)", release)
		}
	}
	for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "etcd", "containerd"} {
		add("baseline", n, filepath.Join(o.binDir, n))
	}
	for _, n := range []string{"runc", "containerd-shim-runc-v2", "bridge", "host-local", "loopback", "portmap", "coredns", "pause"} {
		add("baseline", n, filepath.Join(o.payloadBin, n))
	}
	return s
}

// rerender reads results.json back and writes the report again, with the
// executables' sizes measured afresh.
func rerender(o options) error {
	var err error
	for _, p := range []*string{&o.kubox, &o.binDir, &o.payloadBin, &o.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(filepath.Join(o.out, "results.json"))
	if err != nil {
		return fmt.Errorf("%w: run `make bench` first", err)
	}
	var r results
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(o.out, "results.json"), err)
	}
	r.Sizes = binarySizes(o)
	return r.write(o.out, o.readme)
}

// The results block of a README lies between these markers.
const (
	readmeStart = "<!-- bench-results -->"
	readmeEnd   = "<!-- /bench-results -->"
)

// spliceReadme puts the report md (headings one level down, the chart
// below it) between the markers of readme.
func spliceReadme(readme, md string) (string, error) {
	i := strings.Index(readme, readmeStart)
	j := strings.Index(readme, readmeEnd)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %s … %s block", readmeStart, readmeEnd)
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(md), "\n") {
		if strings.HasPrefix(line, "#") {
			line = "#" + line
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\n![kubox vs upstream: start-up and memory](results/chart.png)\n")
	return readme[:i+len(readmeStart)] + "\n" + b.String() + readme[j:], nil
}

func (r *results) write(dir, readme string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644); err != nil {
		return err
	}
	md := r.markdown()
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if readme != "" {
		old, err := os.ReadFile(readme)
		if err != nil {
			return err
		}
		s, err := spliceReadme(string(old), md)
		if err != nil {
			return fmt.Errorf("%s: %w", readme, err)
		}
		if err := os.WriteFile(readme, []byte(s), 0o644); err != nil {
			return err
		}
	}
	return writeChart(filepath.Join(dir, "chart.png"), r.panels())
}

func (r *results) byName(name string) *targetResult {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// figure is one row: how to get a target's per-run values.
type figure struct {
	label string
	get   func(*targetResult) []float64
}

func startFigures() []figure {
	pick := func(cold bool, f func(startTimes) float64) func(*targetResult) []float64 {
		return func(t *targetResult) []float64 {
			src := t.Warm
			if cold {
				src = t.Cold
			}
			var out []float64
			for _, s := range src {
				out = append(out, f(s))
			}
			return out
		}
	}
	return []figure{
		{"first start: /readyz", pick(true, func(s startTimes) float64 { return s.Readyz })},
		{"first start: node Ready", pick(true, func(s startTimes) float64 { return s.NodeReady })},
		{"first start: first pod Running", pick(true, func(s startTimes) float64 { return s.PodRunning })},
		{"first start: kube-system Ready", pick(true, func(s startTimes) float64 { return s.SystemPods })},
		{"restart: /readyz", pick(false, func(s startTimes) float64 { return s.Readyz })},
		{"restart: node Ready", pick(false, func(s startTimes) float64 { return s.NodeReady })},
		{"restart: new pod Running", pick(false, func(s startTimes) float64 { return s.PodRunning })},
	}
}

func memFigures() []figure {
	pick := func(f func(memSample) float64) func(*targetResult) []float64 {
		return func(t *targetResult) []float64 {
			var out []float64
			for _, m := range t.Memory {
				out = append(out, f(m))
			}
			return out
		}
	}
	return []figure{
		{"RSS, all processes", pick(func(m memSample) float64 { return m.RSSMB })},
		{"PSS, all processes", pick(func(m memSample) float64 { return m.PSSMB })},
		{"cgroup usage", pick(func(m memSample) float64 { return m.CgroupMB })},
		{"cgroup working set", pick(func(m memSample) float64 { return m.WorkingSetMB })},
	}
}

func podFigures() []figure {
	pick := func(f func(podsResult) float64) func(*targetResult) []float64 {
		return func(t *targetResult) []float64 {
			var out []float64
			for _, p := range t.Pods {
				out = append(out, f(p))
			}
			return out
		}
	}
	return []figure{
		{"create → Running p50", pick(func(p podsResult) float64 { return p.P50 })},
		{"create → Running p99", pick(func(p podsResult) float64 { return p.P99 })},
		{"all Running", pick(func(p podsResult) float64 { return p.All })},
	}
}

func apiFigures() []figure {
	var out []figure
	for _, conc := range []int{1, 16} {
		for _, verb := range []string{"create", "get", "list", "delete"} {
			k := fmt.Sprintf("%s c=%d", verb, conc)
			if verb == "list" {
				out = append(out, figure{fmt.Sprintf("list of all (c=%d run), ms", conc), func(t *targetResult) []float64 {
					var v []float64
					for _, op := range t.API[k] {
						v = append(v, op.P50ms)
					}
					return v
				}})
				continue
			}
			for _, m := range []string{"objects/s", "p50 ms", "p99 ms"} {
				m := m
				out = append(out, figure{fmt.Sprintf("%s, %s", k, m), func(t *targetResult) []float64 {
					var v []float64
					for _, op := range t.API[k] {
						switch m {
						case "objects/s":
							v = append(v, op.PerSecond)
						case "p50 ms":
							v = append(v, op.P50ms)
						default:
							v = append(v, op.P99ms)
						}
					}
					return v
				}})
			}
		}
	}
	for _, size := range []string{"5000", "20000"} {
		size := size
		out = append(out, figure{"list of " + size + " ConfigMaps, ms", func(t *targetResult) []float64 { return t.List[size] }})
	}
	return out
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cell(xs []float64) string {
	s := summarize(xs)
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

// nodes are the targets that run a node: all but kubox-ha, whose servers
// run the control plane only and have a table of their own.
func (r *results) nodes() []*targetResult {
	var out []*targetResult
	for _, t := range r.Targets {
		if t.Name != "kubox-ha" && t.Name != "kubox-agent" {
			out = append(out, t)
		}
	}
	return out
}

// table renders figures for every node, plus each kubox target's ratio to
// the baseline, computed run by run.
func (r *results) table(title, note string, figs []figure) string {
	return r.tableOf(title, note, figs, r.nodes(), r.byName("baseline"), "baseline")
}

// tableOf renders figures for targets, plus each one's ratio to base
// (named baseName in the header; no ratios without base).
func (r *results) tableOf(title, note string, figs []figure, targets []*targetResult, base *targetResult, baseName string) string {
	if len(targets) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s\n\n", title)
	if note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}
	hdr := []string{"figure"}
	for _, t := range targets {
		hdr = append(hdr, t.Label)
	}
	var ratioTargets []*targetResult
	if base != nil {
		for _, t := range targets {
			if t != base {
				ratioTargets = append(ratioTargets, t)
				hdr = append(hdr, t.Label+" ÷ "+baseName)
			}
		}
	}
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(hdr)))
	for _, f := range figs {
		row := []string{f.label}
		any := false
		for _, t := range targets {
			v := f.get(t)
			if summarize(v).N > 0 {
				any = true
			}
			row = append(row, cell(v))
		}
		if !any {
			continue
		}
		for _, t := range ratioTargets {
			rs := summarize(pairRatios(f.get(t), f.get(base)))
			if rs.N == 0 {
				row = append(row, "–")
			} else {
				row = append(row, fmt.Sprintf("%.2f", rs.Median))
			}
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	return b.String()
}

func (r *results) markdown() string {
	var b strings.Builder
	keys := func(m map[string]string) []string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		sort.Strings(k)
		return k
	}
	fmt.Fprintf(&b, "## Benchmark: kubox vs upstream Kubernetes (%s)\n\n", r.Date)
	var mach, vers []string
	for _, k := range keys(r.Machine) {
		mach = append(mach, k+" "+r.Machine[k])
	}
	for _, k := range keys(r.Versions) {
		vers = append(vers, k+": "+r.Versions[k])
	}
	fmt.Fprintf(&b, "Machine: %s.  \nVersions: %s.  \n", strings.Join(mach, ", "), strings.Join(vers, "; "))
	fmt.Fprintf(&b, "Each cell: median (min–max) of %s runs; targets alternate run by run, and each ratio is the median of the run-by-run ratios.\n",
		r.Settings["runs"])
	b.WriteString(r.table("Start-up, seconds from process start (lower is better)",
		"First start: empty state, certificates included. Restart: processes stopped and started again, containers left running. Node Ready counts only a heartbeat from the new start; the pod is created as soon as the API answers.",
		startFigures()))
	b.WriteString(r.phaseTable())
	b.WriteString(r.table(fmt.Sprintf("Memory after %s idle, MiB (lower is better)", r.Settings["idle"]),
		"Every process of the node (control plane, kubelet, kube-proxy, datastore, containerd, shims, CoreDNS and the bench's pause pod), summed; PSS shares pages fairly between processes. The cgroup holds all of them; its working set leaves out inactive file cache.",
		memFigures()))
	b.WriteString(r.procTable())
	b.WriteString(r.agentTable())
	b.WriteString(r.table("API through client-go (objects/s: higher is better; ms: lower is better)",
		fmt.Sprintf("%s ConfigMaps created, read, listed in one call and deleted, by 1 and by 16 concurrent callers.", r.Settings["objects"]),
		apiFigures()))
	b.WriteString(r.datastoreLine())
	b.WriteString(r.haTable())
	b.WriteString(r.table(fmt.Sprintf("%s pods created at once, seconds (lower is better)", r.Settings["pods"]), "", podFigures()))
	b.WriteString(r.storeTable())
	b.WriteString(r.smallTable())
	b.WriteString(r.sizeTable())
	return b.String()
}

// datastoreLine sets kubox on SQLite beside kubox on etcd: the same API
// server on each datastore, their runs paired, so the ratio is the
// datastore's share of the difference.
func (r *results) datastoreLine() string {
	sq, et := r.byName("kubox"), r.byName("kubox-etcd")
	if sq == nil || et == nil {
		return ""
	}
	var parts []string
	for _, f := range apiFigures() {
		if !strings.HasPrefix(f.label, "create c=16") {
			continue
		}
		if rs := summarize(pairRatios(f.get(sq), f.get(et))); rs.N > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", strings.TrimPrefix(f.label, "create c=16, "), rs.Median))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	line := fmt.Sprintf("\nCreates at c=16, %s ÷ %s (the same API server on each datastore, runs paired): %s.\n",
		sq.Label, et.Label, strings.Join(parts, ", "))
	if a, b := sq.Datastore, et.Datastore; a != nil && b != nil {
		line += fmt.Sprintf("\nThe datastore alone (16 clients creating 1 KB keys on its etcd API, with the condition the API server puts on a create; "+
			"the last run's node idle): %s %.0f/s, p99 %.1f ms; %s %.0f/s, p99 %.1f ms; ratios %.2f and %.2f.\n",
			sq.Label, a.PerSecond, a.P99ms, et.Label, b.PerSecond, b.P99ms, a.PerSecond/b.PerSecond, a.P99ms/b.P99ms)
	}
	return line
}

// haTable: creates on three servers beside one server on SQLite (with its
// node), and the ratio of each pair of runs, which ran side by side.
func (r *results) haTable() string {
	ha, one := r.byName("kubox-ha"), r.byName("kubox")
	if ha == nil {
		return ""
	}
	targets := []*targetResult{ha}
	if one != nil {
		targets = []*targetResult{one, ha}
	}
	var creates []figure
	for _, f := range apiFigures() {
		if strings.HasPrefix(f.label, "create ") {
			creates = append(creates, f)
		}
	}
	return r.tableOf(fmt.Sprintf("Creates on %d servers, embedded etcd (objects/s: higher is better; ms: lower is better)", haServers),
		fmt.Sprintf("The same %s ConfigMap creates by 1 and by 16 callers as above, through the API of the first of %d `kubox server --disable-agent` (control plane only, each in a network namespace of its own on one bridge, all on this machine's cores) whose embedded etcd members form one cluster: a write is acknowledged once a quorum of members has it. kubox (SQLite) is the single server above, with its node.",
			r.Settings["objects"], haServers),
		creates, targets, one, "kubox (SQLite)")
}

func (r *results) procTable() string {
	var b strings.Builder
	b.WriteString("\nPSS by process, MiB (median):\n\n")
	for _, t := range r.nodes() {
		if len(t.Memory) == 0 {
			continue
		}
		med := medianByProcess(t)
		var parts []string
		for _, k := range topProcesses(med) {
			parts = append(parts, fmt.Sprintf("%s %s", k, fmtNum(med[k])))
		}
		fmt.Fprintf(&b, "- %s: %s\n", t.Label, strings.Join(parts, ", "))
	}
	return b.String()
}

func (r *results) storeTable() string {
	var b strings.Builder
	for _, t := range r.Targets {
		s := t.Store
		if s == nil {
			continue
		}
		by := ""
		if s.Concurrency > 1 {
			by = fmt.Sprintf(" by %d callers", s.Concurrency)
		}
		fmt.Fprintf(&b, "\n### Datastore growth: %s, %d updates of one ConfigMap%s, compaction every %s\n\n", t.Label, s.Updates, by, s.CompactInterval)
		b.WriteString("| | database | WAL |\n|---|---|---|\n")
		fmt.Fprintf(&b, "| before | %s MiB | %s MiB |\n", fmtNum(s.DBBeforeMB), fmtNum(s.WALBeforeMB))
		fmt.Fprintf(&b, "| after the updates | %s MiB | %s MiB |\n", fmtNum(s.DBAfterMB), fmtNum(s.WALAfterMB))
		fmt.Fprintf(&b, "| two compactions later | %s MiB | %s MiB |\n\n", fmtNum(s.DBCompactedMB), fmtNum(s.WALCompactedMB))
		if before := s.DBBeforeMB + s.WALBeforeMB; before > 0 {
			fmt.Fprintf(&b, "Database and WAL together, two compactions after the updates: %s MiB, %.2f× what they were before them.\n",
				fmtNum(s.DBCompactedMB+s.WALCompactedMB), (s.DBCompactedMB+s.WALCompactedMB)/before)
		}
		fmt.Fprintf(&b, "Updates: %.0f/s, p99 %s ms, longest %s ms. A read every 10 ms throughout: p99 %s ms, longest stall %s ms.\n",
			s.UpdatesPerS, fmtNum(s.UpdateP99ms), fmtNum(s.UpdateMaxms), fmtNum(s.ProbeP99ms), fmtNum(s.ProbeMaxms))
	}
	return b.String()
}

func (r *results) sizeTable() string {
	var b strings.Builder
	b.WriteString("\n### On disk\n\n| target | file | MiB |\n|---|---|---|\n")
	totals := map[string]float64{}
	for _, s := range r.Sizes {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Target, s.File, fmtNum(s.MB))
		if !strings.HasPrefix(s.File, "dist/") {
			totals[s.Target] += s.MB
		}
	}
	for _, t := range []string{"kubox", "baseline"} {
		fmt.Fprintf(&b, "| %s | **executables, total** | **%s** |\n", t, fmtNum(totals[t]))
	}
	b.WriteString("\nState after the first start, MiB:\n\n")
	for _, t := range r.Targets {
		var parts []string
		var keys []string
		for k := range t.DataDir {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %s", k, fmtNum(t.DataDir[k])))
		}
		fmt.Fprintf(&b, "- %s: %s\n", t.Label, strings.Join(parts, ", "))
	}
	return b.String()
}

// panels: start-up and memory, every target side by side.
func (r *results) panels() []chartPanel {
	mk := func(title string, figs []figure) chartPanel {
		p := chartPanel{Title: title}
		for _, f := range figs {
			p.Categories = append(p.Categories, f.label)
		}
		for _, t := range r.nodes() {
			s := chartSeries{Name: t.Label}
			for _, f := range figs {
				sum := summarize(f.get(t))
				s.Values = append(s.Values, sum.Median)
				s.Low = append(s.Low, sum.Min)
				s.High = append(s.High, sum.Max)
			}
			p.Series = append(p.Series, s)
		}
		return p
	}
	return []chartPanel{
		mk(fmt.Sprintf("Start-up, s (median of %s, whiskers min-max; lower is better)", r.Settings["runs"]), startFigures()),
		r.timelinePanel(),
		mk(fmt.Sprintf("Memory after %s idle, MiB (lower is better)", r.Settings["idle"]), memFigures()),
		r.stackPanel(),
	}
}

// timelinePanel: a first start of each node target on one time axis:
// kubox's own phases, then the milestones the bench times for every
// target (medians over the runs).
func (r *results) timelinePanel() chartPanel {
	p := chartPanel{Title: "First start, s from process start (median): kubox's components ready, and (=) what a user waits for", Timeline: &chartTimeline{}}
	for i, t := range r.nodes() {
		p.Series = append(p.Series, chartSeries{Name: t.Label})
		var rows []chartTimelineRow
		for _, ph := range medianPhases(t) {
			rows = append(rows, chartTimelineRow{Series: i, Label: ph.name, End: ph.s})
		}
		for _, f := range startFigures() {
			if !strings.HasPrefix(f.label, "first start: ") {
				continue
			}
			if xs := f.get(t); len(xs) > 0 {
				rows = append(rows, chartTimelineRow{Series: i,
					Label: "= " + strings.TrimPrefix(f.label, "first start: "), End: summarize(xs).Median})
			}
		}
		sort.SliceStable(rows, func(a, b int) bool { return rows[a].End < rows[b].End })
		p.Timeline.Rows = append(p.Timeline.Rows, rows...)
	}
	return p
}

// stackPanel: idle PSS of each node target, by process (medians).
func (r *results) stackPanel() chartPanel {
	p := chartPanel{Title: fmt.Sprintf("PSS by process after %s idle, MiB (median)", r.Settings["idle"]), Stack: &chartStack{}}
	for _, t := range r.nodes() {
		med := medianByProcess(t)
		if len(med) == 0 {
			continue
		}
		bar := chartStackBar{Name: t.Label}
		for _, k := range topProcesses(med) {
			bar.Parts = append(bar.Parts, chartStackPart{Name: k, Value: med[k]})
		}
		p.Stack.Bars = append(p.Stack.Bars, bar)
	}
	return p
}

type medianPhase struct {
	name string
	s    float64
}

// medianPhases: kubox's start-up phases on first starts, median each, in
// the order they were reached.
func medianPhases(t *targetResult) []medianPhase {
	all := map[string][]float64{}
	for _, st := range t.Cold {
		for k, v := range st.Phases {
			all[k] = append(all[k], v)
		}
	}
	var list []medianPhase
	for k, v := range all {
		list = append(list, medianPhase{k, summarize(v).Median})
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].s < list[j].s || list[i].s == list[j].s && list[i].name < list[j].name
	})
	return list
}

// medianByProcess: idle PSS by process label, median over the runs.
func medianByProcess(t *targetResult) map[string]float64 {
	all := map[string][]float64{}
	for _, m := range t.Memory {
		for k, v := range m.ByProcess {
			all[k] = append(all[k], v)
		}
	}
	med := map[string]float64{}
	for k, v := range all {
		med[k] = summarize(v).Median
	}
	return med
}

// phaseTable: when each of kubox's components was first ready on a first
// start, median over the runs, beside the milestones the bench times.
func (r *results) phaseTable() string {
	var b strings.Builder
	for _, t := range r.Targets {
		list := medianPhases(t)
		if len(list) == 0 {
			continue
		}
		var parts []string
		for _, p := range list {
			parts = append(parts, fmt.Sprintf("%s %s", p.name, fmtNum(p.s)))
		}
		fmt.Fprintf(&b, "\n%s, first start, each component first ready (kubox_startup_phase_seconds, median s): %s.\n", t.Label, strings.Join(parts, ", "))
	}
	return b.String()
}

// smallTable: the whole node under a small machine's memory.
func (r *results) smallTable() string {
	s := r.Small
	if s == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Small hardware: kubox (SQLite) in a %s MiB memory cgroup\n\n", fmtNum(s.LimitMB))
	b.WriteString("The whole node (kubox, containerd, shims, CoreDNS and the pods) in one memory cgroup with that limit, from empty state: " +
		fmt.Sprintf("node Ready, then %d pause pods, then %s of checks every 5 s that the node stays Ready, the pods Running and unrestarted, and the kernel killed nothing.\n\n", s.Pods, r.Settings["small_hold"]))
	b.WriteString("| result | node Ready, s | held, s | peak usage, MiB | peak working set, MiB | OOM kills | restarts |\n|---|---|---|---|---|---|---|\n")
	result := "passed"
	if !s.OK {
		result = "failed: " + s.Failure
	}
	fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %d | %d |\n", result, fmtNum(s.NodeReadyS), s.HeldS, fmtNum(s.PeakMB), fmtNum(s.PeakSampleMB), s.OOMKills, s.Restarts)
	b.WriteString("\nPeak usage is the cgroup's high-water mark, page cache included (the kernel reclaims cache before it kills); the working set leaves inactive file cache out.\n")
	return b.String()
}

// workerProcs are the processes of the baseline node that an upstream
// worker runs too: what a kubox agent replaces.
var workerProcs = []string{"kubelet", "kube-proxy", "containerd"}

// agentTable: the agent's join and idle memory beside the baseline node's
// worker processes (their RSS and PSS from the same runs' samples).
func (r *results) agentTable() string {
	ag, base := r.byName("kubox-agent"), r.byName("baseline")
	if ag == nil {
		return ""
	}
	targets := []*targetResult{ag}
	var worker *targetResult
	if base != nil {
		worker = &targetResult{Name: "upstream-worker", Label: "upstream worker (" + strings.Join(workerProcs, ", ") + ")"}
		for _, m := range base.Memory {
			var w memSample
			for _, p := range workerProcs {
				w.RSSMB += m.RSSByProcess[p]
				w.PSSMB += m.ByProcess[p]
			}
			if w.RSSMB > 0 {
				worker.Memory = append(worker.Memory, w)
			}
		}
		if len(worker.Memory) > 0 {
			targets = append(targets, worker)
		} else {
			worker = nil
		}
	}
	figs := []figure{
		{"join: agent start → node Ready, s", func(t *targetResult) []float64 {
			var v []float64
			for _, s := range t.Cold {
				v = append(v, s.NodeReady)
			}
			return v
		}},
	}
	for _, f := range memFigures() {
		if strings.HasPrefix(f.label, "RSS") || strings.HasPrefix(f.label, "PSS") || f.label == "cgroup working set" {
			figs = append(figs, figure{f.label + ", MiB", f.get})
		}
	}
	table := r.tableOf(fmt.Sprintf("Agent: a node joined to a server, after %s idle (lower is better)", r.Settings["idle"]),
		"`kubox agent` joined to a `kubox server` with its own node, each in a network namespace of its own on one bridge and a cgroup of its own; "+
			"the agent's cgroup is measured: kubox, its containerd and whatever runs on the node. The upstream worker is the baseline node's kubelet, kube-proxy and containerd "+
			"(on a node that also runs the control plane and CoreDNS), from the memory runs above; its runs pair with the agent's by number.",
		figs, targets, worker, "upstream worker")
	var parts []string
	med := medianByProcess(ag)
	for _, k := range topProcesses(med) {
		parts = append(parts, fmt.Sprintf("%s %s", k, fmtNum(med[k])))
	}
	if len(parts) > 0 {
		table += fmt.Sprintf("\nThe agent's PSS by process, MiB (median): %s.\n", strings.Join(parts, ", "))
	}
	return table
}
