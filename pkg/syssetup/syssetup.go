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
	"slices"
	"strconv"
	"strings"
)

// Requirement is one thing a node needs or can use.
type Requirement struct {
	ID    string `json:"id"` // short name, as --require takes it
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Fatal bool   `json:"fatal"`          // the node cannot run pods without it
	Info  string `json:"info,omitempty"` // what was found, or what uses it
	Fix   string `json:"fix,omitempty"`  // the command or step that fixes it
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

// ipv6Sysctls are set too on a node with IPv6 pods (dual-stack): the node
// routes their traffic, as it does IPv4's.
var ipv6Sysctls = []struct{ key, value string }{
	{"net/ipv6/conf/all/forwarding", "1"},
}

// Apply sets the kernel parameters pods need (with ipv6, those of IPv6
// pods too). A parameter whose file is missing is skipped here and
// reported by Check.
func Apply(ipv6 bool) error {
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		_ = exec.Command("modprobe", "br_netfilter").Run()
	}
	all := sysctls
	if ipv6 {
		all = append(all[:len(all):len(all)], ipv6Sysctls...)
	}
	for _, s := range all {
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

// Check reports every requirement of a node on this host.
func Check() []Requirement { return RealHost().Check() }

// Check reports every requirement of a node: host tools, the kernel's
// features, cgroup controllers and privileges.
func (h Host) Check() []Requirement {
	var r []Requirement
	for _, tool := range []string{"iptables", "ip6tables", "iptables-save", "iptables-restore"} {
		p, err := exec.LookPath(tool)
		r = append(r, Requirement{ID: tool, Name: tool + " on PATH", OK: err == nil, Fatal: true, Info: p,
			Fix: "apt-get install iptables (or your distribution's package)"})
	}
	ipset, ipsetErr := exec.LookPath("ipset")
	r = append(r, Requirement{ID: "ipset-tool", Name: "ipset on PATH", OK: ipsetErr == nil,
		Info: strings.TrimPrefix(ipset+"; network policy needs it unless --disable-network-policy", "; "), Fix: "apt-get install ipset"})
	nft, nftErr := exec.LookPath("nft")
	r = append(r, Requirement{ID: "nft", Name: "nft on PATH", OK: nftErr == nil,
		Info: strings.TrimPrefix(nft+"; optional: --kube-proxy-arg proxy-mode=nftables", "; "), Fix: "apt-get install nftables"})
	r = append(r, h.checkKernelConfig())
	for _, f := range kernelFeatures() {
		r = append(r, h.checkFeature(f))
	}
	r = append(r, h.checkCgroups()...)
	r = append(r, Requirement{ID: "cap_sys_resource", Name: "CAP_SYS_RESOURCE", OK: HasCapSysResource(),
		Info: "without it kubox clamps pods' oom_score_adj (as in containers)", Fix: "run kubox with all capabilities"})
	r = append(r, Requirement{ID: "root", Name: "running as root", OK: os.Geteuid() == 0, Fatal: true, Fix: "run kubox as root (sudo)"})
	for i := range r {
		if r[i].OK {
			r[i].Fix = "" // nothing to fix
		}
	}
	return r
}

// NetworkPolicyNeeds are the requirements a node that enforces
// NetworkPolicies (the default) cannot start without; Check leaves them
// optional, for nodes with --disable-network-policy.
func NetworkPolicyNeeds() []string { return []string{"ipset-tool", "ipset", "xt_set"} }

// BackendNeeds are the requirements a node whose pod network uses the
// --flannel-backend backend cannot start without.
func BackendNeeds(backend string) []string {
	if backend == "wireguard-native" {
		return []string{"wireguard"}
	}
	return nil
}

// Require makes the requirements whose IDs are named fatal: an optional
// feature the user depends on.
func Require(reqs []Requirement, ids []string) []Requirement {
	for i := range reqs {
		if slices.Contains(ids, reqs[i].ID) {
			reqs[i].Fatal = true
		}
	}
	return reqs
}

// Only keeps the requirements whose IDs are named.
func Only(reqs []Requirement, ids []string) []Requirement {
	var out []Requirement
	for _, q := range reqs {
		if slices.Contains(ids, q.ID) {
			out = append(out, q)
		}
	}
	return out
}

// IDs are the requirements' IDs, in order.
func IDs(reqs []Requirement) []string {
	ids := make([]string, len(reqs))
	for i, q := range reqs {
		ids[i] = q.ID
	}
	return ids
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
