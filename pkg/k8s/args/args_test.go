package args

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/pki"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func inputs(t *testing.T, mutate func(*config.ServerOptions)) Inputs {
	t.Helper()
	o := config.ServerOptions{
		DataDir: "/var/lib/kubox", ConfigDir: "/etc/kubox",
		AdvertiseAddress: "192.0.2.10", HTTPSPort: 6443,
	}
	if mutate != nil {
		mutate(&o)
	}
	s, err := o.Server()
	if err != nil {
		t.Fatal(err)
	}
	return Inputs{
		Server:               s,
		Certs:                pki.ControlPlaneFiles(s.Paths.TLSDir),
		EtcdServers:          []string{"unix:///var/lib/kubox/server/kine.sock"},
		ControllerKubeconfig: "/var/lib/kubox/server/cred/controller.kubeconfig",
		SchedulerKubeconfig:  "/var/lib/kubox/server/cred/scheduler.kubeconfig",
		SchedulerConfigFile:  "/var/lib/kubox/server/conf/scheduler.yaml",
		AuthenticationConfig: "/var/lib/kubox/server/conf/authentication.yaml",
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/k8s/args -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; if intended, rerun with -update.\ngot:\n%s", name, got)
	}
}

// TestGolden pins exactly what upstream receives for the defaults.
func TestGolden(t *testing.T) {
	in := inputs(t, nil)
	golden(t, "kube-apiserver.flags", strings.Join(APIServer(in), "\n")+"\n")
	golden(t, "kube-controller-manager.flags", strings.Join(ControllerManager(in), "\n")+"\n")
	golden(t, "kube-scheduler.flags", strings.Join(SchedulerFlags(in), "\n")+"\n")
	data, err := yaml.Marshal(SchedulerConfig(in))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kube-scheduler.yaml", string(data))
}

func has(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// TestConfigReachesFlags: user settings and the datastore's answers show up
// in the flags, and extra args replace kubox's value rather than repeat it.
func TestConfigReachesFlags(t *testing.T) {
	in := inputs(t, func(o *config.ServerOptions) {
		o.ClusterCIDR = "10.100.0.0/16"
		o.ServiceCIDR = "10.200.0.0/16"
		o.ClusterDNS = "10.200.0.10"
		o.HTTPSPort = 7443
		o.APIServerArgs = []string{"profiling=true", "audit-log-maxage=3"}
	})
	in.EtcdServers = []string{"https://a:2379", "https://b:2379"}
	in.EtcdCAFile = "/ca.pem"
	api := APIServer(in)
	for _, want := range []string{
		"--service-cluster-ip-range=10.200.0.0/16", "--secure-port=7443",
		"--etcd-servers=https://a:2379,https://b:2379", "--etcd-cafile=/ca.pem",
		"--profiling=true", "--audit-log-maxage=3", "--advertise-address=192.0.2.10",
	} {
		if !has(api, want) {
			t.Errorf("apiserver flags lack %s", want)
		}
	}
	if has(api, "--profiling=false") {
		t.Errorf("extra arg did not replace kubox's --profiling")
	}
	cm := ControllerManager(in)
	for _, want := range []string{"--cluster-cidr=10.100.0.0/16", "--leader-elect=false", "--secure-port=0"} {
		if !has(cm, want) {
			t.Errorf("controller-manager flags lack %s", want)
		}
	}
	if le := SchedulerConfig(in).LeaderElection.LeaderElect; le == nil || *le {
		t.Errorf("upstream scheduler leader election must be off: kubox elects")
	}
}

// TestGoldenCIS pins what --profile cis hands the API server, beside the
// defaults' golden file: the difference is what the profile changes.
func TestGoldenCIS(t *testing.T) {
	in := inputs(t, func(o *config.ServerOptions) { o.Profile = config.ProfileCIS })
	in.AuditPolicyFile = "/var/lib/kubox/server/conf/audit-policy.yaml"
	in.AuthenticationConfig = "" // the server writes none: no anonymous access at all
	golden(t, "kube-apiserver-cis.flags", strings.Join(APIServer(in), "\n")+"\n")
	api := APIServer(in)
	for _, want := range []string{"--anonymous-auth=false", "--admission-control-config-file=/var/lib/kubox/server/conf/pod-security-admission.yaml",
		"--audit-log-path=/var/lib/kubox/server/logs/audit.log", "--profiling=false"} {
		if !has(api, want) {
			t.Errorf("--profile cis: apiserver flags lack %s", want)
		}
	}
}

// TestGoldenDualStack pins what a dual-stack cluster hands the control
// plane and the node: both ranges, primary first, and one node range size
// per family.
func TestGoldenDualStack(t *testing.T) {
	in := inputs(t, func(o *config.ServerOptions) {
		o.ClusterCIDR = "10.42.0.0/16,fd42::/56"
		o.ServiceCIDR = "10.43.0.0/16,fd43::/112"
	})
	golden(t, "kube-apiserver-dualstack.flags", strings.Join(APIServer(in), "\n")+"\n")
	golden(t, "kube-controller-manager-dualstack.flags", strings.Join(ControllerManager(in), "\n")+"\n")
	node := nodeInputsFor(t, in, config.AgentOptions{NodeName: "node-1", NodeIP: "192.0.2.10,2001:db8::10"})
	golden(t, "kubelet-dualstack.flags", strings.Join(KubeletFlags(node), "\n")+"\n")
	golden(t, "kube-proxy-dualstack.flags", strings.Join(KubeProxyFlags(node), "\n")+"\n")
	for _, want := range []string{"--node-cidr-mask-size-ipv4=24", "--node-cidr-mask-size-ipv6=64", "--cluster-cidr=10.42.0.0/16,fd42::/56"} {
		if !has(ControllerManager(in), want) {
			t.Errorf("controller-manager flags lack %s", want)
		}
	}
	if has(ControllerManager(inputs(t, nil)), "--node-cidr-mask-size-ipv6=64") {
		t.Errorf("a single-stack cluster got per-family node range sizes")
	}
}

// TestOwnNodeIPAM: the server runs node IPAM itself, and the
// controller-manager leaves it out, unless the user's controller-manager
// arguments decide how nodes get their ranges.
func TestOwnNodeIPAM(t *testing.T) {
	in := inputs(t, nil)
	if !OwnNodeIPAM(in.Server) || !has(ControllerManager(in), "--controllers=*,-node-ipam-controller") {
		t.Errorf("default: node IPAM not taken out of the controller-manager: %v", ControllerManager(in))
	}
	if got := NodeCIDRMaskSizes(in.Server); len(got) != 1 || got[0] != 24 {
		t.Errorf("single-stack mask sizes = %v, want [24]", got)
	}
	dual := inputs(t, func(o *config.ServerOptions) {
		o.ClusterCIDR = "fd42::/56,10.42.0.0/16"
		o.ServiceCIDR = "fd43::/112,10.43.0.0/16"
		o.ClusterDNS = "fd43::a"
	})
	if got := NodeCIDRMaskSizes(dual.Server); len(got) != 2 || got[0] != 64 || got[1] != 24 {
		t.Errorf("dual-stack mask sizes = %v, want [64 24]", got)
	}
	for _, arg := range []string{"node-cidr-mask-size=26", "controllers=*,-ttl-after-finished-controller"} {
		user := inputs(t, func(o *config.ServerOptions) { o.ControllerArgs = []string{arg} })
		if OwnNodeIPAM(user.Server) || has(ControllerManager(user), "--controllers=*,-node-ipam-controller") {
			t.Errorf("--kube-controller-manager-arg %s: node IPAM still taken out of the controller-manager", arg)
		}
	}
}
