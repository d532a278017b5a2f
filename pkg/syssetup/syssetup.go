// Package syssetup checks and prepares the host for running pods: kernel
// settings, kernel features, capabilities and the host tools kube-proxy and
// the CNI plugins call. Check reports every requirement with the command
// that fixes it; Apply sets what kubox may set itself.
package syssetup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Requirement is one thing a node needs.
type Requirement struct {
	Name  string
	OK    bool
	Fatal bool   // the node cannot run pods without it
	Info  string // what was found
	Fix   string // the command or step that fixes it
}

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// HasCapSysResource tells whether this process may lower oom_score_adj
// below zero, which containerd needs unless told to clamp it.
func HasCapSysResource() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && bits&(1<<capSysResource) != 0
		}
	}
	return false
}

// sysctls kubox sets at start.
var sysctls = []struct{ key, value string }{
	{"net/ipv4/ip_forward", "1"},
	{"net/bridge/bridge-nf-call-iptables", "1"},
	{"net/bridge/bridge-nf-call-ip6tables", "1"},
}

// Apply sets the kernel parameters pods need. A parameter whose file is
// missing is skipped here and reported by Check.
func Apply() error {
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		_ = exec.Command("modprobe", "br_netfilter").Run()
	}
	for _, s := range sysctls {
		p := filepath.Join("/proc/sys", s.key)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("cannot set %s=%s: %w; run kubox as root", strings.ReplaceAll(s.key, "/", "."), s.value, err)
		}
	}
	return nil
}

// Check reports every requirement of a node.
func Check() []Requirement {
	var r []Requirement
	for _, tool := range []struct{ name, pkg string }{{"iptables", "iptables"}, {"ip6tables", "iptables"}, {"iptables-save", "iptables"}, {"iptables-restore", "iptables"}} {
		p, err := exec.LookPath(tool.name)
		r = append(r, Requirement{Name: tool.name + " on PATH", OK: err == nil, Fatal: true, Info: p,
			Fix: "apt-get install " + tool.pkg + " (or your distribution's package)"})
	}
	_, nftErr := exec.LookPath("nft")
	r = append(r, Requirement{Name: "nft on PATH (only for --kube-proxy-arg proxy-mode=nftables)", OK: nftErr == nil,
		Info: "optional", Fix: "apt-get install nftables"})
	fs, _ := os.ReadFile("/proc/filesystems")
	r = append(r, Requirement{Name: "overlay filesystem", OK: strings.Contains(string(fs), "\toverlay\n"), Fatal: true,
		Fix: "modprobe overlay (kernel config OVERLAY_FS)"})
	_, bridgeErr := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
	r = append(r, Requirement{Name: "bridge netfilter (br_netfilter)", OK: bridgeErr == nil, Fatal: true,
		Fix: "modprobe br_netfilter (kernel config BRIDGE_NETFILTER)"})
	_, tunErr := os.Stat("/sys/module/vxlan")
	vx := tunErr == nil
	if !vx {
		vx = exec.Command("modprobe", "-n", "vxlan").Run() == nil
	}
	r = append(r, Requirement{Name: "vxlan (flannel's default backend)", OK: vx,
		Info: "needed for multi-node vxlan; --flannel-backend host-gw works without it", Fix: "modprobe vxlan (kernel config VXLAN)"})
	memOK := false
	if data, err := os.ReadFile("/proc/cgroups"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[0] == "memory" && f[3] == "1" {
				memOK = true
			}
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		c, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		memOK = strings.Contains(string(c), "memory")
	}
	r = append(r, Requirement{Name: "memory cgroup controller", OK: memOK, Fatal: true,
		Fix: "boot with cgroup_enable=memory (and swapaccount=1)"})
	r = append(r, Requirement{Name: "CAP_SYS_RESOURCE", OK: HasCapSysResource(),
		Info: "without it kubox clamps pods' oom_score_adj (as in containers)", Fix: "run kubox with all capabilities"})
	r = append(r, Requirement{Name: "running as root", OK: os.Geteuid() == 0, Fatal: true, Fix: "run kubox as root (sudo)"})
	return r
}

// Missing returns the first fatal unmet requirement as an error, or nil.
func Missing(reqs []Requirement) error {
	for _, q := range reqs {
		if q.Fatal && !q.OK {
			return fmt.Errorf("this host lacks %s: %s; `kubox check-config` lists every requirement", q.Name, q.Fix)
		}
	}
	return nil
}
