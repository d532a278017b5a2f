package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// kubox-ha is three `kubox server`s whose embedded etcd members form one
// cluster, control plane only (--disable-agent), so that the bench can
// show what replicating every write to a quorum costs the API. Each server
// needs 6443, 2379 and 2380 on its own address, so each runs in a network
// namespace of its own, joined to the others and the host by a bridge.
const (
	haServers = 3
	haBridge  = "kbxbha0"
	haPrefix  = "10.197.0."
	haHostIP  = haPrefix + "254"
)

func haNetns(i int) string { return fmt.Sprintf("kbxbha-%d", i) }
func haURL(i int) string   { return fmt.Sprintf("https://%s%d:6443", haPrefix, i) }

// setupHANet creates the bridge and one namespace per server (server i at
// 10.197.0.i) and returns what removes them. As for the node's namespace,
// the host does not forward, so nothing from the servers leaves it.
func setupHANet() (func(), error) {
	for i := 1; i <= haServers; i++ {
		if _, err := os.Stat("/run/netns/" + haNetns(i)); err == nil {
			return nil, fmt.Errorf("network namespace %s exists: another bench runs, or an earlier one was killed; remove it with `ip netns del %s`", haNetns(i), haNetns(i))
		}
	}
	undoMount := testenv.UndoNetnsMount()
	teardown := func() {
		for i := 1; i <= haServers; i++ {
			// The namespace takes its end of the veth pair, and with it
			// the host's end.
			_ = sh("ip", "netns", "del", haNetns(i))
		}
		_ = sh("ip", "link", "del", haBridge)
		undoMount()
	}
	steps := [][]string{
		{"ip", "link", "add", haBridge, "type", "bridge"},
		{"ip", "addr", "add", haHostIP + "/24", "dev", haBridge},
		{"ip", "link", "set", haBridge, "up"},
	}
	for i := 1; i <= haServers; i++ {
		ns, veth, ip := haNetns(i), fmt.Sprintf("kbxbha-v%d", i), fmt.Sprintf("%s%d", haPrefix, i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "link", "set", veth, "master", haBridge, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "route", "add", "default", "via", haHostIP},
		)
	}
	for _, s := range steps {
		if err := sh(s[0], s[1:]...); err != nil {
			teardown()
			return nil, err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+haBridge+"/forwarding", []byte("0"), 0o644); err != nil {
		teardown()
		return nil, err
	}
	return teardown, nil
}

// haTarget runs the three servers in one cgroup; the bench reaches the
// API through the first.
type haTarget struct {
	bin    string
	dir    string
	logDir string
	cg     *cgroup
	ps     []*proc
}

func newKuboxHA(bin, dir, logDir string, cg *cgroup) *haTarget {
	return &haTarget{bin: bin, dir: dir, logDir: logDir, cg: cg}
}

func (h *haTarget) Name() string                  { return "kubox-ha" }
func (h *haTarget) Label() string                 { return fmt.Sprintf("kubox (%d servers, embedded etcd)", haServers) }
func (h *haTarget) Cgroup() *cgroup               { return h.cg }
func (h *haTarget) server(i int) string           { return filepath.Join(h.dir, fmt.Sprint("server-", i)) }
func (h *haTarget) Kubeconfig() string            { return filepath.Join(h.server(1), "kubeconfig.yaml") }
func (h *haTarget) APIURL() string                { return haURL(1) }
func (h *haTarget) SQLiteFiles() (string, string) { return "", "" }

func (h *haTarget) DataDirs() map[string]string {
	m := map[string]string{}
	for i := 1; i <= haServers; i++ {
		m[fmt.Sprint("server ", i)] = filepath.Join(h.server(i), "data")
	}
	return m
}

// Start starts the servers one after another and returns once all of them
// serve: a joining server's member is added to etcd as a learner and
// promoted before its server serves, and etcd takes one learner at a time.
func (h *haTarget) Start(ctx context.Context, _ startOpts) error {
	for i := 1; i <= haServers; i++ {
		dir := h.server(i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		config := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(config, nil, 0o600); err != nil {
			return err
		}
		// startProc puts a process in the node's namespace; from there
		// each server enters its own.
		args := []string{"nsenter", "--net=/run/netns/" + haNetns(i), "--", h.bin, "server",
			"--config", config,
			"--data-dir", filepath.Join(dir, "data"),
			"--run-dir", filepath.Join(dir, "run"),
			"--write-kubeconfig", filepath.Join(dir, "kubeconfig.yaml"),
			"--advertise-address", fmt.Sprintf("%s%d", haPrefix, i),
			"--disable-agent",
		}
		if i == 1 {
			args = append(args, "--cluster-init")
		} else {
			token, err := os.ReadFile(filepath.Join(h.server(1), "data", "server", "token"))
			if err != nil {
				return err
			}
			args = append(args, "--server", haURL(1), "--token", strings.TrimSpace(string(token)))
		}
		p, err := startProc(h.cg, h.logDir, fmt.Sprint("kubox-", i), nil, args...)
		if err != nil {
			return err
		}
		h.ps = append(h.ps, p)
		// Waiting ends early if the server exits.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		go func() {
			select {
			case <-p.done:
				cancel()
			case <-wctx.Done():
			}
		}()
		err = waitReadyz(wctx, haURL(i))
		cancel()
		if err != nil {
			return fmt.Errorf("server %d does not serve: %w", i, err)
		}
	}
	return nil
}

// Stop ends the servers side by side: one by one, the last would wait
// for a quorum that is gone.
func (h *haTarget) Stop() {
	var wg sync.WaitGroup
	for _, p := range h.ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(time.Minute) }()
	}
	wg.Wait()
	h.ps = nil
}

// Wipe needs no `kubox killall`: a server without its node makes no
// containers, mounts, interfaces or cgroups; the namespaces go at the end.
func (h *haTarget) Wipe() error {
	h.Stop()
	return os.RemoveAll(h.dir)
}

func (h *haTarget) Failure() string {
	var b strings.Builder
	for i, p := range h.ps {
		fmt.Fprintf(&b, "last lines of server %d's log:\n%s\n", i+1, p.tail(15))
	}
	return b.String()
}
