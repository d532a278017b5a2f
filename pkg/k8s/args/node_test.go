package args

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubox-io/kubox/pkg/config"
)

func nodeInputs(t *testing.T, mutate func(*config.AgentOptions)) NodeInputs {
	t.Helper()
	o := config.AgentOptions{NodeName: "node-1", NodeIP: "192.0.2.10"}
	if mutate != nil {
		mutate(&o)
	}
	return nodeInputsFor(t, inputs(t, nil), o)
}

// nodeInputsFor are the node inputs of a node with options o in the
// cluster of in.
func nodeInputsFor(t *testing.T, in Inputs, o config.AgentOptions) NodeInputs {
	t.Helper()
	a, err := o.Agent(in.Server)
	if err != nil {
		t.Fatal(err)
	}
	return NodeInputs{
		Agent: a, Paths: in.Server.Paths,
		KubeletKubeconfig:   "/var/lib/kubox/agent/tls/kubelet.kubeconfig",
		KubeProxyKubeconfig: "/var/lib/kubox/agent/tls/kube-proxy.kubeconfig",
		ClientCAFile:        "/var/lib/kubox/server/tls/client-ca.crt",
		ServingCert:         "/var/lib/kubox/agent/tls/serving-kubelet.crt",
		ServingKey:          "/var/lib/kubox/agent/tls/serving-kubelet.key",
		CgroupRoot:          "/process_api/abc/kubox",
		CgroupV1:            true,
		ResolvConf:          "/etc/resolv.conf",
		KubeletConfigFile:   "/var/lib/kubox/agent/conf/kubelet.yaml",
	}
}

// TestNodeGolden pins what the kubelet and kube-proxy receive by default.
func TestNodeGolden(t *testing.T) {
	in := nodeInputs(t, nil)
	data, err := yaml.Marshal(KubeletConfig(in))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kubelet.yaml", string(data))
	golden(t, "kubelet.flags", strings.Join(KubeletFlags(in), "\n")+"\n")
	golden(t, "kube-proxy.flags", strings.Join(KubeProxyFlags(in), "\n")+"\n")
}

// TestNodeSettingsReachUpstream: the cgroup v1 switch, labels, taints and
// extra args land where upstream reads them; extra args replace kubox's.
func TestNodeSettingsReachUpstream(t *testing.T) {
	in := nodeInputs(t, func(o *config.AgentOptions) {
		o.NodeLabels = []string{"zone=a", "tier=edge"}
		o.NodeTaints = []string{"dedicated=db:NoSchedule"}
		o.KubeletArgs = []string{"max-pods=50"}
		o.KubeProxyArgs = []string{"proxy-mode=nftables"}
	})
	kc := KubeletConfig(in)
	if kc.FailCgroupV1 == nil || *kc.FailCgroupV1 {
		t.Errorf("failCgroupV1 must be false on a cgroup v1 host")
	}
	if kc.CgroupRoot != "/process_api/abc/kubox" || kc.CgroupDriver != "cgroupfs" {
		t.Errorf("cgroup settings: root %q driver %q", kc.CgroupRoot, kc.CgroupDriver)
	}
	if len(kc.RegisterWithTaints) != 1 || kc.RegisterWithTaints[0].Key != "dedicated" || kc.RegisterWithTaints[0].Effect != "NoSchedule" {
		t.Errorf("taints: %+v", kc.RegisterWithTaints)
	}
	if got := kc.ClusterDNS; len(got) != 1 || got[0] != "10.43.0.10" {
		t.Errorf("clusterDNS %v", got)
	}
	in.CgroupV1 = false
	if KubeletConfig(in).FailCgroupV1 != nil {
		t.Errorf("failCgroupV1 set on a cgroup v2 host")
	}
	flags := KubeletFlags(in)
	for _, want := range []string{"--node-labels=zone=a,tier=edge", "--max-pods=50", "--node-ip=192.0.2.10", "--hostname-override=node-1"} {
		if !has(flags, want) {
			t.Errorf("kubelet flags lack %s: %v", want, flags)
		}
	}
	proxy := KubeProxyFlags(in)
	if !has(proxy, "--proxy-mode=nftables") || has(proxy, "--proxy-mode=iptables") {
		t.Errorf("kube-proxy mode not replaced: %v", proxy)
	}
}

// TestKubeletHardening: the kubelet serves no profiles and no read-only
// port, and with --protect-kernel-defaults (checked by kubox first) it
// changes no kernel parameter.
func TestKubeletHardening(t *testing.T) {
	in := nodeInputs(t, nil)
	kc := KubeletConfig(in)
	if kc.ProtectKernelDefaults || kc.EnableProfilingHandler == nil || *kc.EnableProfilingHandler || kc.ReadOnlyPort != 0 {
		t.Errorf("defaults: protectKernelDefaults %v, enableProfilingHandler %v, readOnlyPort %d", kc.ProtectKernelDefaults, kc.EnableProfilingHandler, kc.ReadOnlyPort)
	}
	in.Agent.ProtectKernelDefaults = true
	if !KubeletConfig(in).ProtectKernelDefaults {
		t.Errorf("--protect-kernel-defaults does not reach the kubelet")
	}
}
