package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kubox-agent is a `kubox agent` joined to a `kubox server` (with its own
// node), each in a network namespace of the kubox-ha bridge (server 1 and
// 2's addresses) and a cgroup of its own. Only the agent's cgroup is
// measured: the agent with its containerd and whatever runs on its node.
// The agent runs a copy of the executable: on a machine of its own it
// shares no page of it with a server, and here it must not either, or
// its RSS would count pages the server keeps resident.
const (
	agentNode  = "bench-agent"
	serverNode = "bench-server"
)

type agentTarget struct {
	bin      string // the server's
	agentBin string // the agent's copy
	dir      string
	logDir   string
	cg       *cgroup // the agent's
	serverCG *cgroup
	server   *proc
	agent    *proc
}

func newKuboxAgent(bin, binCopy, dir, logDir string, cg *cgroup) (*agentTarget, error) {
	if err := copyFile(bin, binCopy); err != nil {
		return nil, err
	}
	scg, err := newCgroup("kbxbench-kubox-agent-server")
	if err != nil {
		return nil, err
	}
	return &agentTarget{bin: bin, agentBin: binCopy, dir: dir, logDir: logDir, cg: cg, serverCG: scg}, nil
}

// copyFile copies an executable and leaves none of the copy in the page
// cache, as if it had been installed long ago: pages still dirty from the
// copy could not be dropped when kubox releases them at idle.
func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func (a *agentTarget) Name() string                  { return "kubox-agent" }
func (a *agentTarget) Label() string                 { return "kubox agent" }
func (a *agentTarget) Cgroup() *cgroup               { return a.cg }
func (a *agentTarget) node(n string) string          { return filepath.Join(a.dir, n) }
func (a *agentTarget) Kubeconfig() string            { return filepath.Join(a.node("server"), "kubeconfig.yaml") }
func (a *agentTarget) APIURL() string                { return haURL(1) }
func (a *agentTarget) SQLiteFiles() (string, string) { return "", "" }

func (a *agentTarget) DataDirs() map[string]string {
	return map[string]string{"agent's data dir": filepath.Join(a.node("agent"), "data")}
}

// args are the flags both commands share: the node's own state, address
// and an upstream resolver nothing answers.
func (a *agentTarget) args(n string, i int) ([]string, error) {
	dir := a.node(n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	config, resolv := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(resolv, []byte("nameserver "+noResolver+"\n"), 0o644); err != nil {
		return nil, err
	}
	bin := a.bin
	if n == "agent" {
		bin = a.agentBin
	}
	return []string{"nsenter", "--net=/run/netns/" + haNetns(i), "--", bin, "",
		"--config", config,
		"--data-dir", filepath.Join(dir, "data"),
		"--run-dir", filepath.Join(dir, "run"),
		"--node-ip", fmt.Sprintf("%s%d", haPrefix, i),
		"--flannel-iface", "eth0",
		"--resolv-conf", resolv,
	}, nil
}

// startServer starts the server and returns once its node is Ready, so
// that the agent's join is timed alone.
func (a *agentTarget) startServer(ctx context.Context) error {
	args, err := a.args("server", 1)
	if err != nil {
		return err
	}
	args[4] = "server"
	args = append(args, "--node-name", serverNode, "--advertise-address", haPrefix+"1",
		"--write-kubeconfig", a.Kubeconfig())
	if a.server, err = startProc(a.serverCG, a.logDir, "kubox-server", nil, args...); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := waitReadyz(ctx, a.APIURL()); err != nil {
		return fmt.Errorf("the server does not serve: %w\n%s", err, a.Failure())
	}
	cs, err := waitClient(ctx, a.Kubeconfig(), a.APIURL())
	if err != nil {
		return err
	}
	if err := pollUntil(ctx, 100*time.Millisecond, func() (bool, error) { return namedNodeReady(ctx, cs, serverNode, time.Time{}) }); err != nil {
		return fmt.Errorf("the server's node is not Ready: %w\n%s", err, a.Failure())
	}
	return nil
}

// startAgent joins the agent with the server's token.
func (a *agentTarget) startAgent() error {
	token, err := os.ReadFile(filepath.Join(a.node("server"), "data", "server", "token"))
	if err != nil {
		return err
	}
	args, err := a.args("agent", 2)
	if err != nil {
		return err
	}
	args[4] = "agent"
	args = append(args, "--node-name", agentNode, "--server", a.APIURL(), "--token", strings.TrimSpace(string(token)))
	a.agent, err = startProc(a.cg, a.logDir, "kubox-agent", nil, args...)
	return err
}

// Start starts both; the bench's agent run times the two steps apart.
func (a *agentTarget) Start(ctx context.Context, _ startOpts) error {
	if err := a.startServer(ctx); err != nil {
		return err
	}
	return a.startAgent()
}

func (a *agentTarget) Stop() {
	a.agent.stop(time.Minute)
	a.server.stop(time.Minute)
	a.agent, a.server = nil, nil
}

// Wipe stops both, then `kubox killall` takes each node down inside its own
// namespace and cgroup.
func (a *agentTarget) Wipe() error {
	a.Stop()
	for i, n := range []string{"server", "agent"} {
		data := filepath.Join(a.node(n), "data")
		if _, err := os.Stat(data); err != nil {
			continue
		}
		cg := []*cgroup{a.serverCG, a.cg}[i]
		out, err := runIn(cg, 2*time.Minute, "nsenter", "--net=/run/netns/"+haNetns(i+1), "--",
			a.bin, "killall", "--data-dir", data, "--run-dir", filepath.Join(a.node(n), "run"))
		if err != nil {
			return fmt.Errorf("kubox killall (%s): %v\n%s", n, err, out)
		}
	}
	return os.RemoveAll(a.dir)
}

// close removes the server's cgroup; the bench removes the agent's.
func (a *agentTarget) close() { a.serverCG.remove() }

func (a *agentTarget) Failure() string {
	var b strings.Builder
	for _, p := range []*proc{a.server, a.agent} {
		if p != nil {
			fmt.Fprintf(&b, "last lines of %s's log:\n%s\n", p.name, p.tail(15))
		}
	}
	return b.String()
}

// agentRun: the server started and its node Ready, then the agent started
// and timed to its node Ready, idle, and the agent's memory.
func agentRun(ctx context.Context, o options, a *agentTarget, r *targetResult, i int) error {
	tag := fmt.Sprintf("%s run %d/%d", a.Name(), i+1, o.runs)
	if err := a.Wipe(); err != nil {
		return err
	}
	defer a.Wipe()
	progress("%s: server", tag)
	if err := a.startServer(ctx); err != nil {
		return fmt.Errorf("%s: %w", tag, err)
	}
	cs, err := clientFor(a.Kubeconfig(), a.APIURL(), 50)
	if err != nil {
		return err
	}
	progress("%s: agent joins", tag)
	t0 := time.Now()
	if err := a.startAgent(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = pollUntil(wctx, 50*time.Millisecond, func() (bool, error) { return namedNodeReady(wctx, cs, agentNode, t0) })
	cancel()
	if err != nil {
		return fmt.Errorf("%s: the agent's node is not Ready: %w\n%s", tag, err, a.Failure())
	}
	st := startTimes{NodeReady: time.Since(t0).Seconds()}
	r.Cold = append(r.Cold, st)
	if i == 0 {
		r.DataDir = map[string]float64{}
		for label, d := range a.DataDirs() {
			r.DataDir[label] = mb(dirSize(d))
		}
	}
	progress("%s: agent's node Ready %.1fs; idle %s, then memory", tag, st.NodeReady, o.idle)
	if err := sleepCtx(ctx, o.idle); err != nil {
		return err
	}
	m, err := sampleMemory(a.cg)
	if err != nil {
		return err
	}
	r.Memory = append(r.Memory, m)
	progress("%s: agent RSS %.0f MiB, PSS %.0f MiB, cgroup %.0f MiB over %d processes", tag, m.RSSMB, m.PSSMB, m.CgroupMB, m.Processes)
	return nil
}

// namedNodeReady: the node's Ready condition is true, with a heartbeat
// from t0 on (any heartbeat for a zero t0).
func namedNodeReady(ctx context.Context, cs *kubernetes.Clientset, name string, t0 time.Time) (bool, error) {
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, nil
	}
	return readySince(node, t0), nil
}
