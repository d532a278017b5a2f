package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// testNet is a bridge on the host with one network namespace per node, each
// joined to it by a veth pair: nodes talk to each other and to the host
// over the bridge, and nothing else.
type testNet struct {
	t      *testing.T
	bridge string
	prefix string // 10.199.0.
	nss    []string
	v6     bool // the bridge has its IPv6 address (addIPv6)
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	n := &testNet{t: t, bridge: "kbxt0", prefix: "10.199.0."}
	t.Cleanup(testenv.UndoNetnsMount())
	n.ip("link", "add", n.bridge, "type", "bridge")
	t.Cleanup(func() { run("ip", []string{"link", "del", n.bridge}, nil) })
	n.ip("addr", "add", n.prefix+"254/24", "dev", n.bridge)
	n.ip("link", "set", n.bridge, "up")
	return n
}

func (n *testNet) ip(args ...string) {
	n.t.Helper()
	if out, err := run("ip", args, nil); err != nil {
		n.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addNamespace creates namespace kbxt-<i> with eth0 at <prefix><i>.
func (n *testNet) addNamespace(i int) (ns, ip string) {
	n.t.Helper()
	ns, ip = fmt.Sprintf("kbxt-%d", i), fmt.Sprintf("%s%d", n.prefix, i)
	host := fmt.Sprintf("kbxt-v%d", i)
	n.ip("netns", "add", ns)
	n.t.Cleanup(func() {
		run("ip", []string{"netns", "del", ns}, nil)
		run("ip", []string{"link", "del", host}, nil)
	})
	n.ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	n.ip("link", "set", host, "master", n.bridge, "up")
	n.ip("-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	n.ip("-n", ns, "link", "set", "eth0", "up")
	n.ip("-n", ns, "link", "set", "lo", "up")
	n.ip("-n", ns, "route", "add", "default", "via", n.prefix+"254")
	return ns, ip
}

// setLink brings a namespace's link to the bridge down or up.
func (n *testNet) setLink(i int, up bool) {
	state := "down"
	if up {
		state = "up"
	}
	n.ip("link", "set", fmt.Sprintf("kbxt-v%d", i), state)
}

// netNode is one kubox process (server or agent) in its own network
// namespace and its own cgroup below the test's.
type netNode struct {
	t        *testing.T
	name     string
	ns, ip   string
	Dir      string
	DataDir  string
	RunDir   string
	cgroups  []string // cgroup.procs files the process joins first
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping atomic.Bool // the test ends the process: its exit is expected
	logf     *os.File
	bin      string
	resolv   string
	emptyCfg string
}

func newNetNode(t *testing.T, name, ns, ip string) *netNode {
	t.Helper()
	dir := t.TempDir()
	n := &netNode{t: t, name: name, ns: ns, ip: ip, Dir: dir, DataDir: filepath.Join(dir, "data"), RunDir: filepath.Join(dir, "run"), bin: kuboxBin(t)}
	n.resolv = filepath.Join(dir, "resolv.conf")
	os.WriteFile(n.resolv, []byte("nameserver 10.42.0.1\n"), 0o644)
	n.emptyCfg = filepath.Join(dir, "config.yaml")
	os.WriteFile(n.emptyCfg, nil, 0o600)
	n.cgroups = childCgroups(t, "kbxt-"+name)
	t.Cleanup(func() {
		n.Stop()
		// killall runs in the node's cgroup, so it finds the cgroups
		// kubox made below it.
		if out, err := n.inCgroup(n.bin, "killall", "--data-dir", n.DataDir, "--run-dir", n.RunDir); err != nil {
			t.Errorf("kubox killall (%s): %v\n%s", name, err, out)
		}
		if t.Failed() {
			t.Logf("--- last lines of %s's log:\n%s", name, n.tail(40))
		}
	})
	return n
}

// tail is the last lines of the node's log.
func (n *netNode) tail(lines int) string { return tailFile(filepath.Join(n.Dir, "kubox.log"), lines) }

// airGapImage puts an image archive into the node's air-gap images
// directory, which it imports when it starts.
func (n *netNode) airGapImage(archive string) {
	n.t.Helper()
	dir := filepath.Join(n.DataDir, "agent", "images")
	os.MkdirAll(dir, 0o700)
	data, err := os.ReadFile(archive)
	if err != nil {
		n.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, filepath.Base(archive)), data, 0o600)
}

// inNet is the command prefix that enters a namespace's network only:
// `ip netns exec` would also mount a fresh /sys, hiding the cgroup mounts.
func inNet(ns string) []string { return []string{"nsenter", "--net=/run/netns/" + ns, "--"} }

// exec runs a command inside the node's network namespace.
func (n *netNode) exec(args ...string) (string, error) {
	return run(inNet(n.ns)[0], append(inNet(n.ns)[1:], args...), nil)
}

const joinCgroups = `for f in $KBXT_CGROUPS; do echo $$ > "$f" || exit 1; done; exec "$@"`

// inCgroup runs a command to its end inside the node's namespace and cgroup.
func (n *netNode) inCgroup(args ...string) (string, error) {
	return run("sh", append(append([]string{"-c", joinCgroups, "sh"}, inNet(n.ns)...), args...),
		[]string{"KBXT_CGROUPS=" + strings.Join(n.cgroups, " ")})
}

// Start launches `kubox <args>` in the namespace and cgroup.
func (n *netNode) Start(args ...string) {
	n.t.Helper()
	f, err := os.OpenFile(filepath.Join(n.Dir, "kubox.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	n.logf = f
	argv := append(append(append([]string{"-c", joinCgroups, "sh"}, inNet(n.ns)...), n.bin), args...)
	n.cmd = exec.Command("sh", argv...)
	n.cmd.Env = append(os.Environ(), "KBXT_CGROUPS="+strings.Join(n.cgroups, " "))
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	n.stopping.Store(false)
	started := time.Now()
	go func(cmd *exec.Cmd, done chan struct{}) {
		err := cmd.Wait()
		// Said when it happens: a wait that follows would otherwise only
		// time out, against a port nobody listens on.
		if !n.stopping.Load() {
			n.t.Logf("%s's kubox exited by itself %.1fs after its start: %v; its last lines:\n%s", n.name, time.Since(started).Seconds(), err, n.tail(15))
		}
		close(done)
	}(n.cmd, n.exited)
}

// Stop ends the process (SIGTERM, then SIGKILL after a minute).
func (n *netNode) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	n.stopping.Store(true)
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(time.Minute):
		n.cmd.Process.Kill()
		<-n.exited
	}
	n.logf.Close()
}

// Kill ends the process with SIGKILL, as a crash or a power loss would.
func (n *netNode) Kill() {
	n.stopping.Store(true)
	n.cmd.Process.Kill()
	<-n.exited
	n.logf.Close()
}

// waitExit says whether the process ended by itself within timeout.
func (n *netNode) waitExit(timeout time.Duration) bool {
	select {
	case <-n.exited:
		n.logf.Close()
		return true
	case <-time.After(timeout):
		return false
	}
}

// childCgroups creates <own cgroup>/<name> in every hierarchy where the
// test process has a cgroup of its own (not the root), and returns their cgroup.procs files; the cgroups go
// when the test ends (after killall removed what kubox made below them).
func childCgroups(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var procs, dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		mount := ""
		switch ctrl := parts[1]; {
		case ctrl == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				mount = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(ctrl, "name="):
			mount = "/sys/fs/cgroup/" + strings.TrimPrefix(ctrl, "name=")
		default:
			mount = "/sys/fs/cgroup/" + ctrl
		}
		// A hierarchy the test sits at the root of is not ours to change:
		// kubox nests there below the path of the cgroups that are.
		if parts[2] == "/" {
			continue
		}
		parent := filepath.Join(mount, parts[2])
		if _, err := os.Stat(filepath.Join(parent, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			t.Fatalf("cgroup %s: %v", dir, err)
		}
		dirs = append(dirs, dir)
		// A new cpuset cgroup has no CPUs or memory nodes until given some.
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if data, err := os.ReadFile(filepath.Join(parent, file)); err == nil {
				os.WriteFile(filepath.Join(dir, file), data, 0o644)
			}
		}
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	}
	if len(procs) == 0 {
		t.Skip("the test runs in no cgroup of its own to nest nodes below")
	}
	t.Cleanup(func() {
		// kubox nests its cgroups under the same path in the hierarchies
		// the test sits at the root of; those path ends go too.
		rel := strings.TrimPrefix(dirs[0], "/sys/fs/cgroup/")
		rel = rel[strings.Index(rel, "/"):]
		mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, m := range mounts {
			if d := filepath.Join(m, rel); !contains(dirs, d) {
				os.Remove(d)
			}
		}
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Logf("cgroup %s left: %v", d, err)
			}
		}
	})
	return procs
}

// runIn runs `kubox <args>` in namespace ns to its end (at most timeout).
func runIn(ns, bin string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append(append(inNet(ns), bin), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
