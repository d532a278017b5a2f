package args

import (
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

// NodeInputs is everything the node builders need.
type NodeInputs struct {
	Agent *config.Agent
	Paths paths.Paths

	KubeletKubeconfig   string
	KubeProxyKubeconfig string
	ClientCAFile        string // CA of clients the kubelet accepts (the apiserver)
	ServingCert         string
	ServingKey          string
	CgroupRoot          string // below the cgroup kubox was started in
	CgroupV1            bool
	ResolvConf          string
	KubeletConfigFile   string
}

// KubeletConfig returns the kubelet's typed configuration.
func KubeletConfig(in NodeInputs) *kubeletv1beta1.KubeletConfiguration {
	a := in.Agent
	f, t := false, true
	resolv := in.ResolvConf
	cfg := &kubeletv1beta1.KubeletConfiguration{
		Address:            "0.0.0.0",
		ReadOnlyPort:       0,
		HealthzBindAddress: "127.0.0.1",
		TLSCertFile:        in.ServingCert,
		TLSPrivateKeyFile:  in.ServingKey,
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: &f},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: &t},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: in.ClientCAFile},
		},
		Authorization:            kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		ClusterDomain:            a.ClusterDomain,
		ClusterDNS:               []string{a.ClusterDNS.String()},
		CgroupDriver:             "cgroupfs",
		CgroupRoot:               in.CgroupRoot,
		ContainerRuntimeEndpoint: "unix://" + in.Paths.ContainerdSocket,
		ResolverConfig:           &resolv,
		FailSwapOn:               &f,
		SerializeImagePulls:      &f,
		// Eviction thresholds as k3s users know them: leave room, but do
		// not taint a node on a large, mostly full disk.
		EvictionHard: map[string]string{
			"imagefs.available": "5%",
			"nodefs.available":  "5%",
			"memory.available":  "100Mi",
		},
		EvictionMinimumReclaim: map[string]string{"imagefs.available": "10%", "nodefs.available": "10%"},
		RegisterWithTaints:     taints(a.NodeTaints),
		// Checked by kubox before the node starts (config.Agent): the
		// kubelet then refuses to change them rather than setting them.
		ProtectKernelDefaults: a.ProtectKernelDefaults,
		// No /debug/pprof on the kubelet's port, as no other component
		// of kubox serves one.
		EnableProfilingHandler: &f,
	}
	if in.CgroupV1 {
		cfg.FailCgroupV1 = &f
	}
	cfg.APIVersion = kubeletv1beta1.SchemeGroupVersion.String()
	cfg.Kind = "KubeletConfiguration"
	return cfg
}

// KubeletFlags returns the kubelet's command-line flags (what has no field
// in KubeletConfiguration), with the user's --kubelet-arg last so it wins.
func KubeletFlags(in NodeInputs) []string {
	a := in.Agent
	m := map[string]string{
		"config":            in.KubeletConfigFile,
		"kubeconfig":        in.KubeletKubeconfig,
		"hostname-override": a.NodeName,
		"node-ip":           joinIPs(a.NodeIPs),
		"root-dir":          in.Paths.KubeletDir,
		"cert-dir":          in.Paths.AgentTLSDir,
		// The server's cloud node controller (pkg/nodeaddress) owns the
		// node's addresses, so that it can add ExternalIPs; the kubelet
		// registers the node tainted until they are set.
		"cloud-provider": "external",
	}
	if len(a.NodeLabels) > 0 {
		m["node-labels"] = strings.Join(a.NodeLabels, ",")
	}
	return flags(m, a.KubeletArgs)
}

// KubeProxyFlags returns kube-proxy's flags. kube-proxy ignores every flag
// once it reads a config file, so kubox configures it by flags alone: that
// way --kube-proxy-arg (e.g. proxy-mode=nftables) keeps working.
func KubeProxyFlags(in NodeInputs) []string {
	a := in.Agent
	return flags(map[string]string{
		"kubeconfig":           in.KubeProxyKubeconfig,
		"hostname-override":    a.NodeName,
		"cluster-cidr":         a.ClusterCIDRs.String(),
		"proxy-mode":           "iptables",
		"healthz-bind-address": "127.0.0.1:10256",
		"metrics-bind-address": "127.0.0.1:10249",
		// Leave the host's conntrack limits alone: in containers and on
		// locked-down hosts kube-proxy may not change them.
		"conntrack-max-per-core":            "0",
		"conntrack-tcp-timeout-established": "0s",
		"conntrack-tcp-timeout-close-wait":  "0s",
		"profiling":                         "false",
	}, a.KubeProxyArgs)
}

// joinIPs is the comma-separated form of --node-ip: the primary family's
// address first.
func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}

func taints(specs []string) []corev1.Taint {
	var out []corev1.Taint
	for _, s := range specs {
		kv, effect, _ := strings.Cut(s, ":")
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out
}
