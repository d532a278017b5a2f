package syssetup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Host is what the kernel checks read, so that tests can stand in for a
// kernel. RealHost reads the running one.
type Host struct {
	// ConfigSource names where Config came from; empty when the kernel
	// configuration could not be found.
	ConfigSource string
	// Config maps CONFIG_ names to "y" or "m"; options not set are absent.
	Config map[string]string
	// Loaded tells whether a module is loaded or built in and listed in
	// /sys/module.
	Loaded func(module string) bool
	// Loadable tells whether modprobe would load a module (modprobe -n).
	Loadable func(module string) bool
	// ReadFile reads a file of /proc or /sys.
	ReadFile func(path string) ([]byte, error)
}

// RealHost reads this host's kernel: its configuration from
// /boot/config-<release> or /proc/config.gz, modules from /proc/modules and
// /sys/module, and modprobe -n.
func RealHost() Host {
	h := Host{ReadFile: os.ReadFile, Loaded: moduleLoaded, Loadable: moduleLoadable}
	h.ConfigSource, h.Config = kernelConfig()
	return h
}

func moduleLoaded(module string) bool {
	if _, err := os.Stat(filepath.Join("/sys/module", module)); err == nil {
		return true
	}
	data, _ := os.ReadFile("/proc/modules")
	return bytes.HasPrefix(data, []byte(module+" ")) || bytes.Contains(data, []byte("\n"+module+" "))
}

func moduleLoadable(module string) bool {
	return exec.Command("modprobe", "-n", module).Run() == nil
}

// kernelConfig reads the running kernel's build configuration, from the
// places distributions keep it.
func kernelConfig() (string, map[string]string) {
	var uts []byte
	if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		uts = bytes.TrimSpace(release)
	}
	for _, p := range []string{"/boot/config-" + string(uts), "/proc/config.gz", "/lib/modules/" + string(uts) + "/build/.config"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			gz, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				continue
			}
			r = gz
		}
		cfg := parseKernelConfig(r)
		f.Close()
		return p, cfg
	}
	return "", nil
}

// parseKernelConfig keeps the CONFIG_X=y and =m lines.
func parseKernelConfig(r io.Reader) map[string]string {
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.HasPrefix(k, "CONFIG_") && (v == "y" || v == "m") {
			cfg[k] = v
		}
	}
	return cfg
}

// kernelPart is one kernel option and the module it builds.
type kernelPart struct{ option, module string }

// feature is a kernel feature kubox can use.
type feature struct {
	id, name string
	parts    []kernelPart
	fatal    bool   // a node cannot run pods without it
	use      string // what uses it, shown for an optional feature
	// proof, when set, tells from /proc or /sys that the feature is there,
	// for kernels whose configuration cannot be read.
	proof func(h Host) (string, bool)
}

// fileProof proves a feature by a file's presence.
func fileProof(path string) func(Host) (string, bool) {
	return func(h Host) (string, bool) {
		_, err := h.ReadFile(path)
		return path, err == nil
	}
}

// filesystemProof proves a filesystem by its line in /proc/filesystems.
func filesystemProof(fs string) func(Host) (string, bool) {
	return func(h Host) (string, bool) {
		data, _ := h.ReadFile("/proc/filesystems")
		return "/proc/filesystems", bytes.Contains(data, []byte("\t"+fs+"\n"))
	}
}

// kernelFeatures are the kernel features kubox can use, in the order shown.
func kernelFeatures() []feature {
	return []feature{
		{id: "overlay", name: "overlay filesystem", parts: []kernelPart{{"CONFIG_OVERLAY_FS", "overlay"}}, fatal: true,
			proof: filesystemProof("overlay")},
		{id: "br_netfilter", name: "bridge netfilter (br_netfilter)", parts: []kernelPart{{"CONFIG_BRIDGE_NETFILTER", "br_netfilter"}}, fatal: true,
			proof: fileProof("/proc/sys/net/bridge/bridge-nf-call-iptables")},
		{id: "conntrack", name: "connection tracking (nf_conntrack)", parts: []kernelPart{{"CONFIG_NF_CONNTRACK", "nf_conntrack"}}, fatal: true,
			proof: fileProof("/proc/sys/net/netfilter/nf_conntrack_max")},
		{id: "vxlan", name: "vxlan", parts: []kernelPart{{"CONFIG_VXLAN", "vxlan"}},
			use: "flannel's default backend between nodes; --flannel-backend host-gw works without it"},
		{id: "wireguard", name: "wireguard", parts: []kernelPart{{"CONFIG_WIREGUARD", "wireguard"}},
			use: "--flannel-backend wireguard-native, an encrypted pod network between nodes"},
		{id: "ipset", name: "ipset (ip_set, hash:ip, hash:net)", parts: []kernelPart{{"CONFIG_IP_SET", "ip_set"}, {"CONFIG_IP_SET_HASH_IP", "ip_set_hash_ip"}, {"CONFIG_IP_SET_HASH_NET", "ip_set_hash_net"}},
			use: "kube-proxy's ipvs mode and network policy"},
		{id: "xt_set", name: "iptables set match (xt_set)", parts: []kernelPart{{"CONFIG_NETFILTER_XT_SET", "xt_set"}},
			use: "iptables rules on ipsets: kube-proxy's ipvs mode and network policy"},
		{id: "nftables", name: "nftables (nf_tables)", parts: []kernelPart{{"CONFIG_NF_TABLES", "nf_tables"}},
			use: "--kube-proxy-arg proxy-mode=nftables"},
		{id: "nftables-queue", name: "nftables queue (nft_queue)", parts: []kernelPart{{"CONFIG_NFT_QUEUE", "nft_queue"}},
			use: "nftables rules that hand packets to a program in user space, as kube-network-policies needs; kubox's network policy (iptables and ipset) does not"},
	}
}

// checkFeature reports a feature from the kernel configuration when there
// is one, and otherwise from the modules and files the kernel shows.
func (h Host) checkFeature(f feature) Requirement {
	r := Requirement{ID: f.id, Name: f.name, Fatal: f.fatal, OK: true}
	var found, missing []string
	for _, p := range f.parts {
		state, ok := h.partState(p, f.proof)
		if ok {
			found = append(found, state)
		} else {
			missing = append(missing, p.module)
			r.OK = false
		}
	}
	if r.OK {
		r.Info = strings.Join(found, ", ")
	} else {
		r.Fix = h.fix(f, missing)
	}
	if !f.fatal && f.use != "" {
		r.Info = strings.TrimPrefix(r.Info+"; optional: "+f.use, "; ")
	}
	return r
}

// partState says how a kernel part is present, or false when it is not.
func (h Host) partState(p kernelPart, proof func(Host) (string, bool)) (string, bool) {
	if h.Config != nil {
		switch h.Config[p.option] {
		case "y":
			return p.option + "=y", true
		case "m":
			if h.Loaded(p.module) {
				return "module " + p.module + " loaded", true
			}
			if h.Loadable(p.module) {
				return "module " + p.module + " available", true
			}
			return "", false
		}
		return "", false
	}
	if h.Loaded(p.module) {
		return "module " + p.module + " loaded", true
	}
	if proof != nil {
		if where, ok := proof(h); ok {
			return "present (" + where + ")", true
		}
	}
	if h.Loadable(p.module) {
		return "module " + p.module + " available", true
	}
	return "", false
}

// fix says what makes each missing part of f available: modprobe when the
// kernel has it as a module (or its configuration is unknown), a kernel
// built with it otherwise.
func (h Host) fix(f feature, missing []string) string {
	var fixes []string
	for _, p := range f.parts {
		if !slices.Contains(missing, p.module) {
			continue
		}
		switch {
		case h.Config == nil:
			fixes = append(fixes, "modprobe "+p.module+" (kernel config "+p.option+")")
		case h.Config[p.option] == "m":
			fixes = append(fixes, "install this kernel's modules, then modprobe "+p.module+" ("+p.option+"=m in "+h.ConfigSource+")")
		default:
			fixes = append(fixes, "a kernel built with "+p.option+"=y or =m (not set in "+h.ConfigSource+")")
		}
	}
	return strings.Join(fixes, "; ")
}

// cgroupController is a cgroup controller and the kernel option behind it.
type cgroupController struct {
	name, option string
	fatal        bool
}

// cgroupControllers are those kubox's pods use, for cgroup v1 or v2.
func cgroupControllers(v2 bool) []cgroupController {
	if v2 {
		return []cgroupController{
			{"cpu", "CONFIG_CGROUP_SCHED", true}, {"cpuset", "CONFIG_CPUSETS", true}, {"memory", "CONFIG_MEMCG", true},
			{"pids", "CONFIG_CGROUP_PIDS", true}, {"io", "CONFIG_BLK_CGROUP", false}, {"hugetlb", "CONFIG_CGROUP_HUGETLB", false},
		}
	}
	return []cgroupController{
		{"cpu", "CONFIG_CGROUP_SCHED", true}, {"cpuacct", "CONFIG_CGROUP_CPUACCT", true}, {"cpuset", "CONFIG_CPUSETS", true},
		{"memory", "CONFIG_MEMCG", true}, {"devices", "CONFIG_CGROUP_DEVICE", true}, {"pids", "CONFIG_CGROUP_PIDS", true},
		{"freezer", "CONFIG_CGROUP_FREEZER", false}, {"blkio", "CONFIG_BLK_CGROUP", false}, {"hugetlb", "CONFIG_CGROUP_HUGETLB", false},
	}
}

// checkCgroups reports each controller: on cgroup v2 those the root
// cgroup offers, on v1 those /proc/cgroups lists as enabled.
func (h Host) checkCgroups() []Requirement {
	enabled := map[string]bool{}
	version := "v1"
	if data, err := h.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		version = "v2"
		for _, c := range strings.Fields(string(data)) {
			enabled[c] = true
		}
	} else if data, err := h.ReadFile("/proc/cgroups"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[3] == "1" {
				enabled[f[0]] = true
			}
		}
	}
	var reqs []Requirement
	for _, c := range cgroupControllers(version == "v2") {
		r := Requirement{ID: "cgroup-" + c.name, Name: c.name + " cgroup controller", OK: enabled[c.name], Fatal: c.fatal, Info: "cgroup " + version}
		if !r.OK {
			r.Fix = h.cgroupFix(c)
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// cgroupFix: a controller the kernel has is turned off on its command line.
func (h Host) cgroupFix(c cgroupController) string {
	if h.Config != nil && h.Config[c.option] == "" {
		return "a kernel built with " + c.option + "=y (not set in " + h.ConfigSource + ")"
	}
	fix := "boot with cgroup_enable=" + c.name + " (and without cgroup_disable=" + c.name + ")"
	if c.name == "memory" {
		fix += " and swapaccount=1"
	}
	return fix + " (kernel config " + c.option + ")"
}

// checkKernelConfig reports whether the kernel's configuration was found:
// without it the checks rely on the modules and files the kernel shows,
// which miss features built in without a trace.
func (h Host) checkKernelConfig() Requirement {
	if h.ConfigSource != "" {
		return Requirement{ID: "kernel-config", Name: "kernel configuration", OK: true, Info: h.ConfigSource}
	}
	return Requirement{ID: "kernel-config", Name: "kernel configuration", Info: "features were checked from loaded and loadable modules only",
		Fix: "install the kernel's config as /boot/config-$(uname -r), or use a kernel with CONFIG_IKCONFIG_PROC (/proc/config.gz)"}
}
