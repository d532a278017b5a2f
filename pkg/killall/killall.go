// Package killall takes a kubox node down completely: every container of
// its containerd, their mounts and network namespaces, kubox's interfaces,
// iptables chains, ipsets and cgroups, and its runtime directory. The host is left
// as it was before kubox started; the data dir (cluster state) is kept.
package killall

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubox-io/kubox/pkg/cgroups"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

// Logger receives one line per action.
type Logger interface {
	Infof(format string, args ...any)
}

// Interfaces kubox's pod network creates on a node.
var Interfaces = []string{"cni0", "flannel.1", "flannel-wg", "kube-ipvs0"}

// chainPrefixes name the iptables chains kube-proxy, the CNI plugins and
// flannel create.
var chainPrefixes = []string{"KUBE-", "CNI-", "FLANNEL-"}

// ipsetPrefixes name the ipsets network policy creates (an IPv6 one's name
// starts with "inet6:" before the prefix).
var ipsetPrefixes = []string{"KUBE-SRC-", "KUBE-DST-"}

// StopKubox ends the kubox server or agent processes that use dataDir
// (SIGTERM, then SIGKILL after grace), so that nothing restarts what Run
// removes. isOurs decides from a process's arguments.
func StopKubox(isOurs func(args []string) bool, grace time.Duration, log Logger) {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.HasPrefix(filepath.Base(exe), "kubox") {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if len(args) > 1 && (args[1] == "server" || args[1] == "agent") && isOurs(args) {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		log.Infof("stopping kubox process %d", pid)
	}
	waitGone(pids, grace)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(pids, 5*time.Second)
}

// Run cleans up the node whose paths are p. cgroupName is the cgroup kubox
// created below its own (see pkg/agent). Errors are collected, not fatal:
// as much as possible is cleaned.
func Run(p paths.Paths, cgroupName string, log Logger) error {
	var errs []error
	// 1. Containers: the shims of this node's containerd and everything
	// below them. Their network namespaces are noted first.
	shims := processesWithArg("-address", p.ContainerdSocket)
	containerd := processesWithArg("--config", p.ContainerdConfig)
	var victims []int
	for _, pid := range shims {
		victims = append(victims, descendants(pid)...)
		victims = append(victims, pid)
	}
	netnsInodes := map[uint64]bool{}
	for _, pid := range victims {
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil {
			netnsInodes[st.Ino] = true
		}
	}
	var self syscall.Stat_t
	if syscall.Stat("/proc/self/ns/net", &self) == nil {
		delete(netnsInodes, self.Ino) // never the host's own namespace
	}
	for _, pid := range append(containerd, victims...) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(append(containerd, victims...), 10*time.Second)
	// A container being created when its shim died (a `runc init`
	// forked after the scan above) has no shim left to find it by, but
	// it is still in this node's pod cgroups: everything there is ours.
	layout, layoutErr := cgroups.Detect()
	if layoutErr == nil {
		root := layout.Root(cgroupName)
		for round := 0; round < 5; round++ {
			left := layout.Procs(root)
			if len(left) == 0 {
				break
			}
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			waitGone(left, 5*time.Second)
			victims = append(victims, left...)
		}
	}
	if len(victims) > 0 {
		log.Infof("killed %d container processes and shims", len(victims))
	}

	// 2. Mounts below kubox's directories and the pods' namespaces.
	n, err := unmountBelow([]string{p.RunDir, p.KubeletDir, p.ContainerdRoot})
	if err != nil {
		errs = append(errs, err)
	}
	if n > 0 {
		log.Infof("unmounted %d filesystems", n)
	}
	// A pod being torn down may have no process left in its namespace;
	// such a namespace is recognised by an address in this node's pod range.
	podNet := podSubnet(p.CNIConfDir)
	for _, dir := range []string{"/var/run/netns", "/run/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			f := filepath.Join(dir, e.Name())
			var st syscall.Stat_t
			if syscall.Stat(f, &st) != nil {
				continue
			}
			if !netnsInodes[st.Ino] && !(strings.HasPrefix(e.Name(), "cni-") && (netnsInRange(e.Name(), podNet) || abandonedNetns(e.Name(), st))) {
				continue
			}
			_ = syscall.Unmount(f, syscall.MNT_DETACH)
			if err := os.Remove(f); err == nil {
				log.Infof("removed network namespace %s", f)
			}
		}
	}

	// 3. Interfaces.
	for _, ifc := range Interfaces {
		if _, err := os.Stat("/sys/class/net/" + ifc); err == nil {
			if out, err := exec.Command("ip", "link", "delete", ifc).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("deleting interface %s: %v: %s", ifc, err, bytes.TrimSpace(out)))
			} else {
				log.Infof("deleted interface %s", ifc)
			}
		}
	}

	// 4. iptables chains and rules, IPv4 and IPv6; nftables tables of
	// kube-proxy's nftables mode.
	for _, fam := range []string{"iptables", "ip6tables"} {
		removed, err := RemoveChains(fam, chainPrefixes)
		if err != nil {
			errs = append(errs, err)
		} else if removed > 0 {
			log.Infof("removed %d %s rules and chains", removed, fam)
		}
	}
	// Network policy's ipsets, once no rule refers to them.
	if n, err := RemoveIPSets(); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		log.Infof("destroyed %d ipsets", n)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		for _, t := range []string{"ip kube-proxy", "ip6 kube-proxy"} {
			if exec.Command("nft", "list", "table", strings.Fields(t)[0], strings.Fields(t)[1]).Run() == nil {
				_ = exec.Command("nft", "delete", "table", strings.Fields(t)[0], strings.Fields(t)[1]).Run()
				log.Infof("deleted nftables table %s", t)
			}
		}
	}

	// 5. Cgroups kubox created below its own.
	if layoutErr == nil {
		if err := layout.Remove(layout.Root(cgroupName)); err != nil {
			errs = append(errs, fmt.Errorf("removing cgroups: %w", err))
		}
	}

	// 6. Container logs the kubelet keeps outside the data dir, for the pods
	// this node ran (their UIDs are the kubelet's pod directories).
	if n := removePodLogs(filepath.Join(p.KubeletDir, "pods")); n > 0 {
		log.Infof("removed the logs of %d pods", n)
	}

	// 7. Runtime state (sockets, shim state); the data dir stays.
	if err := os.RemoveAll(p.RunDir); err != nil {
		errs = append(errs, err)
	}
	// Shim sockets containerd keeps in a fixed place, named by hash.
	removeStaleShimSockets()
	// libcni's cache of this node's pod networks, in a fixed place too.
	if n := removeCNIResults(filepath.Join(p.ContainerdRoot, "io.containerd.grpc.v1.cri", "sandboxes"), CNIResultsDir); n > 0 {
		log.Infof("removed %d cached pod network results", n)
	}
	return errors.Join(errs...)
}

// processesWithArg lists processes whose command line has flag followed by
// value.
func processesWithArg(flag, value string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(data), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == flag && args[i+1] == value {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// descendants lists every process below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// The parent PID follows the command name, which is in parentheses.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			// Reap our own children (containerd) so they do not linger.
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// unmountBelow unmounts every mount point below the given directories,
// deepest first.
func unmountBelow(dirs []string) (int, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescape(fields[4])
		for _, d := range dirs {
			if d != "" && (mp == d || strings.HasPrefix(mp, d+"/")) {
				targets = append(targets, mp)
				break
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	n := 0
	var errs []error
	for _, t := range targets {
		if err := syscall.Unmount(t, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", t, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// RemoveChains deletes the chains whose names contain one of prefixes
// (for killall: kube-proxy's, the CNI plugins' and flannel's) and every
// rule that refers to them, leaving all other rules alone. fam is iptables
// or ip6tables.
func RemoveChains(fam string, prefixes []string) (int, error) {
	save, err := exec.LookPath(fam + "-save")
	if err != nil {
		return 0, nil // no iptables: nothing of ours can be there
	}
	out, err := exec.Command(save).Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", save, err)
	}
	ours := func(line string) bool {
		for _, p := range prefixes {
			if strings.Contains(line, p) {
				return true
			}
		}
		return false
	}
	var kept bytes.Buffer
	removed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if ours(line) && (strings.HasPrefix(line, ":") || strings.HasPrefix(line, "-A ")) {
			removed++
			continue
		}
		kept.WriteString(line)
		kept.WriteByte('\n')
	}
	if removed == 0 {
		return 0, nil
	}
	cmd := exec.Command(fam+"-restore", "-w")
	cmd.Stdin = &kept
	if msg, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s-restore: %v: %s", fam, err, bytes.TrimSpace(msg))
	}
	return removed, nil
}

// RemoveIPSets destroys network policy's ipsets and leaves all others; no
// rule may refer to them any more.
func RemoveIPSets() (int, error) {
	ipset, err := exec.LookPath("ipset")
	if err != nil {
		return 0, nil // no ipset tool: nothing of ours can be there
	}
	out, err := exec.Command(ipset, "list", "-n").Output()
	if err != nil {
		return 0, nil // a kernel without ipsets: none of ours either
	}
	names := ourIPSets(string(out))
	for _, name := range names {
		if msg, err := exec.Command(ipset, "destroy", name).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("ipset destroy %s: %v: %s", name, err, bytes.TrimSpace(msg))
		}
	}
	return len(names), nil
}

// ourIPSets picks network policy's ipsets from `ipset list -n`.
func ourIPSets(list string) []string {
	var ours []string
	for _, name := range strings.Fields(list) {
		for _, p := range ipsetPrefixes {
			if strings.HasPrefix(strings.TrimPrefix(name, "inet6:"), p) {
				ours = append(ours, name)
				break
			}
		}
	}
	return ours
}

// removeStaleShimSockets removes shim sockets nobody listens on any more.
func removeStaleShimSockets() {
	dir := "/run/containerd/s"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	listening := map[string]bool{}
	if data, err := os.ReadFile("/proc/net/unix"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 8 {
				listening[f[7]] = true
			}
		}
	}
	for _, e := range entries {
		f := filepath.Join(dir, e.Name())
		if !listening[f] {
			_ = os.Remove(f)
		}
	}
	_ = os.Remove(dir) // only if empty
	_ = os.Remove("/run/containerd")
}

// Where the kubelet writes container logs regardless of its root dir.
const (
	podLogDir       = "/var/log/pods"
	containerLogDir = "/var/log/containers"
)

// removePodLogs removes /var/log/pods/<ns>_<name>_<uid> for every pod UID
// under podsDir, and the /var/log/containers links into them.
func removePodLogs(podsDir string) int {
	pods, err := os.ReadDir(podsDir)
	if err != nil {
		return 0
	}
	uids := map[string]bool{}
	for _, p := range pods {
		uids[p.Name()] = true
	}
	entries, _ := os.ReadDir(podLogDir)
	removed := map[string]bool{}
	for _, e := range entries {
		i := strings.LastIndexByte(e.Name(), '_')
		if i < 0 || !uids[e.Name()[i+1:]] {
			continue
		}
		dir := filepath.Join(podLogDir, e.Name())
		if os.RemoveAll(dir) == nil {
			removed[dir] = true
		}
	}
	links, _ := os.ReadDir(containerLogDir)
	for _, l := range links {
		f := filepath.Join(containerLogDir, l.Name())
		target, err := os.Readlink(f)
		if err != nil {
			continue
		}
		for dir := range removed {
			if strings.HasPrefix(target, dir+"/") {
				_ = os.Remove(f)
				break
			}
		}
	}
	return len(removed)
}

// podSubnet reads this node's pod range from the CNI configuration kubox
// wrote (see pkg/flannel).
func podSubnet(cniConfDir string) *net.IPNet {
	data, err := os.ReadFile(filepath.Join(cniConfDir, "10-kubox.conflist"))
	if err != nil {
		return nil
	}
	var conf struct {
		Plugins []struct {
			IPAM struct {
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(data, &conf) != nil {
		return nil
	}
	for _, p := range conf.Plugins {
		for _, r := range p.IPAM.Ranges {
			for _, sub := range r {
				if _, n, err := net.ParseCIDR(sub.Subnet); err == nil {
					return n
				}
			}
		}
	}
	return nil
}

// abandonedNetns tells whether a pod network namespace is left over from a
// sandbox whose set-up or tear-down was cut short (containerd or the kubelet
// stopped between creating it and attaching it, or between detaching and
// removing it): no process is in it, it has no interface but loopback, and
// it is older than any set-up in progress could be. Such a namespace serves
// no one, and nothing else would ever remove it.
func abandonedNetns(name string, st syscall.Stat_t) bool {
	if time.Since(time.Unix(st.Mtim.Unix())) < 30*time.Second {
		return false
	}
	out, err := exec.Command("ip", "-n", name, "-o", "link", "show").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) < 2 || strings.TrimSuffix(f[1], ":") != "lo" {
			return false
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		var ns syscall.Stat_t
		if _, err := strconv.Atoi(p.Name()); err == nil && syscall.Stat("/proc/"+p.Name()+"/ns/net", &ns) == nil && ns.Ino == st.Ino {
			return false
		}
	}
	return true
}

// netnsInRange tells whether the named network namespace has an IPv4
// address inside subnet.
func netnsInRange(name string, subnet *net.IPNet) bool {
	if subnet == nil {
		return false
	}
	out, err := exec.Command("ip", "-n", name, "-o", "-4", "addr", "show").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				if ip, _, err := net.ParseCIDR(f[i+1]); err == nil && subnet.Contains(ip) {
					return true
				}
			}
		}
	}
	return false
}

// CNIResultsDir is where libcni caches each attachment's result, named
// <network>-<sandbox ID>-<interface>.
const CNIResultsDir = "/var/lib/cni/results"

// removeCNIResults removes the cached results of the sandboxes this node's
// containerd knows (its sandboxes directory), and no one else's.
func removeCNIResults(sandboxesDir, resultsDir string) int {
	sandboxes, err := os.ReadDir(sandboxesDir)
	if err != nil {
		return 0
	}
	results, err := os.ReadDir(resultsDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, sb := range sandboxes {
		id := "-" + sb.Name() + "-"
		for _, r := range results {
			if strings.Contains(r.Name(), id) && os.Remove(filepath.Join(resultsDir, r.Name())) == nil {
				n++
			}
		}
	}
	return n
}
