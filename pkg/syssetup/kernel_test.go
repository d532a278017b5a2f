package syssetup

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// fakeHost is a kernel for the checks: its configuration (nil: unknown),
// loaded and loadable modules, and files of /proc and /sys.
func fakeHost(config map[string]string, loaded, loadable []string, files map[string]string) Host {
	in := func(list []string) func(string) bool {
		return func(m string) bool { return slices.Contains(list, m) }
	}
	h := Host{Config: config, Loaded: in(loaded), Loadable: in(loadable), ReadFile: func(p string) ([]byte, error) {
		if data, ok := files[p]; ok {
			return []byte(data), nil
		}
		return nil, os.ErrNotExist
	}}
	if config != nil {
		h.ConfigSource = "/boot/config-test"
	}
	return h
}

func find(t *testing.T, reqs []Requirement, id string) Requirement {
	t.Helper()
	for _, r := range reqs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no requirement %q among %v", id, IDs(reqs))
	return Requirement{}
}

// wantFound: each requirement named is met, and says how (info by ID).
func wantFound(t *testing.T, reqs []Requirement, info map[string]string) {
	t.Helper()
	for id, want := range info {
		if r := find(t, reqs, id); !r.OK || !strings.HasPrefix(r.Info, want) {
			t.Errorf("%s: ok %v, info %q; want ok, info starting %q", id, r.OK, r.Info, want)
		}
	}
}

// TestFeaturesFromKernelConfig: with the kernel's configuration, a feature
// built in or available as a module is there; one not built is missing,
// with the kernel option that brings it; a module the kernel has but the
// host lacks asks for the modules to be installed.
func TestFeaturesFromKernelConfig(t *testing.T) {
	h := fakeHost(map[string]string{
		"CONFIG_VXLAN": "y", "CONFIG_IP_SET": "m", "CONFIG_IP_SET_HASH_IP": "m", "CONFIG_IP_SET_HASH_NET": "y", "CONFIG_NF_TABLES": "m",
		"CONFIG_OVERLAY_FS": "y", "CONFIG_NF_CONNTRACK": "m", "CONFIG_BRIDGE_NETFILTER": "m", "CONFIG_NETFILTER_XT_SET": "m",
	}, []string{"ip_set", "nf_conntrack"}, []string{"ip_set_hash_ip", "br_netfilter"}, nil)
	reqs := h.Check()
	wantFound(t, reqs, map[string]string{
		"vxlan":         "CONFIG_VXLAN=y",
		"ipset":         "module ip_set loaded, module ip_set_hash_ip available, CONFIG_IP_SET_HASH_NET=y",
		"conntrack":     "module nf_conntrack loaded",
		"overlay":       "CONFIG_OVERLAY_FS=y",
		"br_netfilter":  "module br_netfilter available",
		"kernel-config": "/boot/config-test",
	})
	for id, fix := range map[string]string{
		"wireguard":      "a kernel built with CONFIG_WIREGUARD=y or =m (not set in /boot/config-test)",
		"nftables-queue": "a kernel built with CONFIG_NFT_QUEUE=y or =m",
		"nftables":       "install this kernel's modules, then modprobe nf_tables (CONFIG_NF_TABLES=m in /boot/config-test)",
		"xt_set":         "install this kernel's modules, then modprobe xt_set",
	} {
		r := find(t, reqs, id)
		if r.OK || r.Fatal || !strings.HasPrefix(r.Fix, fix) {
			t.Errorf("%s: ok %v, fatal %v, fix %q; want an optional miss whose fix starts %q", id, r.OK, r.Fatal, r.Fix, fix)
		}
	}
	err := Missing(Require(h.Check(), []string{"wireguard"}))
	if err == nil || !strings.Contains(err.Error(), "wireguard") || !strings.Contains(err.Error(), "CONFIG_WIREGUARD") {
		t.Errorf("requiring the missing wireguard: %v; want an error naming it and CONFIG_WIREGUARD", err)
	}
}

// TestFeaturesWithoutKernelConfig: without the configuration, modules
// loaded or loadable and the kernel's files decide, and a miss says which
// module to load.
func TestFeaturesWithoutKernelConfig(t *testing.T) {
	h := fakeHost(nil, []string{"vxlan"}, []string{"nf_tables"}, map[string]string{
		"/proc/filesystems":                        "nodev\tproc\n\toverlay\n",
		"/proc/sys/net/netfilter/nf_conntrack_max": "262144\n",
	})
	reqs := h.Check()
	wantFound(t, reqs, map[string]string{
		"vxlan":     "module vxlan loaded",
		"nftables":  "module nf_tables available",
		"overlay":   "present (/proc/filesystems)",
		"conntrack": "present (/proc/sys/net/netfilter/nf_conntrack_max)",
	})
	if r := find(t, reqs, "nftables-queue"); r.OK || r.Fix != "modprobe nft_queue (kernel config CONFIG_NFT_QUEUE)" {
		t.Errorf("nftables-queue: ok %v, fix %q", r.OK, r.Fix)
	}
	if r := find(t, reqs, "br_netfilter"); r.OK || !r.Fatal || r.Fix != "modprobe br_netfilter (kernel config CONFIG_BRIDGE_NETFILTER)" {
		t.Errorf("br_netfilter: ok %v, fatal %v, fix %q", r.OK, r.Fatal, r.Fix)
	}
	if r := find(t, reqs, "kernel-config"); r.OK || r.Fatal || !strings.Contains(r.Fix, "/proc/config.gz") {
		t.Errorf("kernel-config: ok %v, fatal %v, fix %q", r.OK, r.Fatal, r.Fix)
	}
}

// TestCgroupControllers: cgroup v2's controllers come from the root
// cgroup, v1's from /proc/cgroups; a disabled one says how to boot.
func TestCgroupControllers(t *testing.T) {
	v2 := fakeHost(map[string]string{"CONFIG_MEMCG": "y"}, nil, nil, map[string]string{"/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io hugetlb\n"})
	reqs := v2.checkCgroups()
	if r := find(t, reqs, "cgroup-memory"); r.OK || !r.Fatal || !strings.HasPrefix(r.Fix, "boot with cgroup_enable=memory") || r.Info != "cgroup v2" {
		t.Errorf("v2 memory: %+v", r)
	}
	if r := find(t, reqs, "cgroup-pids"); r.OK || r.Fix != "a kernel built with CONFIG_CGROUP_PIDS=y (not set in /boot/config-test)" {
		t.Errorf("v2 pids, not in the kernel config: %+v", r)
	}
	v1 := fakeHost(nil, nil, nil, map[string]string{"/proc/cgroups": "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t4\t1\t0\ndevices\t5\t1\t1\n"})
	reqs = v1.checkCgroups()
	if r := find(t, reqs, "cgroup-devices"); !r.OK || r.Info != "cgroup v1" {
		t.Errorf("v1 devices: %+v", r)
	}
	if r := find(t, reqs, "cgroup-memory"); r.OK || !strings.Contains(r.Fix, "swapaccount=1") {
		t.Errorf("v1 memory, disabled: %+v", r)
	}
}

func TestParseKernelConfig(t *testing.T) {
	cfg := parseKernelConfig(strings.NewReader("# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"str\"\n"))
	if len(cfg) != 2 || cfg["CONFIG_A"] != "y" || cfg["CONFIG_B"] != "m" {
		t.Errorf("parsed %v", cfg)
	}
}

// TestNetworkPolicyNeeds: what network policy needs are checks the host
// reports, optional until required.
func TestNetworkPolicyNeeds(t *testing.T) {
	reqs := fakeHost(nil, nil, nil, nil).Check()
	needs := NetworkPolicyNeeds()
	if got := IDs(Only(reqs, needs)); len(got) != len(needs) {
		t.Fatalf("checks for %v: %v", needs, got)
	}
	for _, q := range Only(reqs, needs) {
		if q.Fatal {
			t.Errorf("%s is fatal before it is required", q.ID)
		}
	}
	for _, q := range Only(Require(reqs, needs), needs) {
		if !q.Fatal {
			t.Errorf("%s is optional once required", q.ID)
		}
	}
}
