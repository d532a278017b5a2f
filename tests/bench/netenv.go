package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kubox-io/kubox/tests/testenv"
)

// The node under test lives in its own network namespace, reached from the
// host over one veth pair, so that everything a distribution adds to the
// network (iptables chains, bridges, vxlan) goes away with the namespace.
const (
	netnsName = "kbxbench"
	hostVeth  = "kbxbench0"
	hostIP    = "10.198.0.1"
	nodeIP    = "10.198.0.2"
	// noResolver is an address in the node's subnet that nothing answers:
	// pods' upstream DNS, so CoreDNS never forwards to the host's resolver.
	noResolver = "10.198.0.3"
)

// netEnv is the namespace plus one memory cgroup per target.
type netEnv struct {
	dir       string
	created   bool
	undoMount func()
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupNet creates the namespace and veth pair. The host side does not
// forward, so nothing from the node leaves this machine.
func setupNet(dir string) (*netEnv, error) {
	e := &netEnv{dir: dir}
	if _, err := os.Stat("/run/netns/" + netnsName); err == nil {
		return nil, fmt.Errorf("network namespace %s exists: another bench runs, or an earlier one was killed; remove it with `ip netns del %s`", netnsName, netnsName)
	}
	e.created = true
	e.undoMount = testenv.UndoNetnsMount()
	steps := [][]string{
		{"ip", "netns", "add", netnsName},
		{"ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", netnsName},
		{"ip", "addr", "add", hostIP + "/24", "dev", hostVeth},
		{"ip", "link", "set", hostVeth, "up"},
		{"nsenter", "--net=/run/netns/" + netnsName, "ip", "link", "set", "lo", "up"},
		{"nsenter", "--net=/run/netns/" + netnsName, "ip", "addr", "add", nodeIP + "/24", "dev", "eth0"},
		{"nsenter", "--net=/run/netns/" + netnsName, "ip", "link", "set", "eth0", "up"},
		{"nsenter", "--net=/run/netns/" + netnsName, "ip", "route", "add", "default", "via", hostIP},
	}
	for _, s := range steps {
		if err := sh(s[0], s[1:]...); err != nil {
			e.teardown()
			return nil, err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+hostVeth+"/forwarding", []byte("0"), 0o644); err != nil {
		e.teardown()
		return nil, err
	}
	return e, nil
}

// teardown removes the namespace (and with it the veth pair and whatever
// the node made inside).
func (e *netEnv) teardown() {
	if !e.created {
		return
	}
	_ = sh("ip", "link", "del", hostVeth)
	_ = sh("ip", "netns", "del", netnsName)
	e.undoMount()
	e.created = false
}

// joinCgroups moves the shell into the target's cgroups, then execs the
// command inside the node's network namespace.
const joinCgroups = `for f in $KBXB_CGROUPS; do echo $$ > "$f" || exit 1; done; exec nsenter --net=/run/netns/` + netnsName + ` -- "$@"`

// wrap returns argv that runs cmd in the namespace and in cg.
func wrap(cg *cgroup, argv ...string) ([]string, []string) {
	return append([]string{"sh", "-c", joinCgroups, "sh"}, argv...),
		[]string{"KBXB_CGROUPS=" + strings.Join(cg.procs, " ")}
}

// cgroup is a target's own cgroup below the bench's, in every hierarchy
// where the bench has a cgroup of its own (here: the memory cgroup the
// machine's supervisor keeps it in). Its memory usage is the target's.
type cgroup struct {
	dirs   []string
	procs  []string
	memory string // the memory cgroup's directory, "" if none
}

func newCgroup(name string) (*cgroup, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cg := &cgroup{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			// The root of a hierarchy is not the bench's to change.
			continue
		}
		var mount string
		switch ctrl := parts[1]; {
		case ctrl == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				mount = "/sys/fs/cgroup"
			}
		default:
			mount = "/sys/fs/cgroup/" + strings.TrimPrefix(ctrl, "name=")
		}
		parent := filepath.Join(mount, parts[2])
		if _, err := os.Stat(filepath.Join(parent, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			cg.remove()
			return nil, err
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if data, err := os.ReadFile(filepath.Join(parent, file)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, file), data, 0o644)
			}
		}
		cg.dirs = append(cg.dirs, dir)
		cg.procs = append(cg.procs, filepath.Join(dir, "cgroup.procs"))
		if strings.Contains(parts[1], "memory") || parts[1] == "" && cg.memory == "" {
			cg.memory = dir
		}
	}
	if len(cg.dirs) == 0 {
		return nil, fmt.Errorf("the bench runs in no cgroup of its own to nest the node below; run it from a shell that has one")
	}
	return cg, nil
}

// pids lists every process in the cgroup and below it.
func (c *cgroup) pids() []int {
	if c.memory == "" {
		return nil
	}
	var out []int
	_ = filepath.WalkDir(c.memory, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// remove deletes the cgroups and the same path below them that a node
// nests under in hierarchies the bench sits at the root of.
func (c *cgroup) remove() {
	if len(c.dirs) > 0 {
		rel := strings.TrimPrefix(c.dirs[0], "/sys/fs/cgroup/")
		if i := strings.Index(rel, "/"); i >= 0 {
			rel = rel[i:]
			mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
			for _, m := range mounts {
				d := filepath.Join(m, rel)
				if !contains(c.dirs, d) {
					removeTree(d)
				}
			}
		}
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		removeTree(c.dirs[i])
	}
}

// removeTree removes empty cgroup directories, deepest first.
func removeTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
