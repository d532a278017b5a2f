// Package args builds the configuration kubox hands to the embedded upstream
// components: the command-line flags of kube-apiserver,
// kube-controller-manager, the kubelet and kube-proxy (upstream's public
// interface for them), and the typed KubeSchedulerConfiguration and
// KubeletConfiguration. Pure functions of kubox's typed config,
// covered by golden tests, so that any change to what upstream receives shows
// in review.
package args

import (
	"fmt"
	"sort"
	"strings"

	componentbasev1alpha1 "k8s.io/component-base/config/v1alpha1"
	schedv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/pki"
)

// Inputs is everything the builders need beyond the server config.
type Inputs struct {
	Server *config.Server
	Certs  pki.ControlPlane

	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string

	ControllerKubeconfig string
	SchedulerKubeconfig  string
	SchedulerConfigFile  string
	// AuditPolicyFile is the audit policy when the server has an audit
	// log (Server.Audit.Path).
	AuditPolicyFile string
	// EncryptionConfig, if set, is the API server's encryption
	// configuration for Secrets, reloaded when it changes.
	EncryptionConfig string
	// AuthenticationConfig, if set, is the API server's authentication
	// configuration file; it then decides anonymous access in place of
	// --anonymous-auth (the two may not both be given).
	AuthenticationConfig string
}

// APIServer returns kube-apiserver's flags.
func APIServer(in Inputs) []string {
	s := in.Server
	c := in.Certs
	issuer := "https://kubernetes.default.svc." + s.ClusterDomain
	m := map[string]string{
		"advertise-address":               s.AdvertiseAddress.String(),
		"allow-privileged":                "true",
		"anonymous-auth":                  fmt.Sprint(s.AnonymousAuth),
		"api-audiences":                   issuer,
		"authorization-mode":              "Node,RBAC",
		"bind-address":                    s.BindAddress.String(),
		"client-ca-file":                  c.ClientCA,
		"enable-admission-plugins":        "NodeRestriction",
		"etcd-compaction-interval":        s.Datastore.CompactInterval.String(),
		"etcd-servers":                    strings.Join(in.EtcdServers, ","),
		"kubelet-certificate-authority":   c.KubeletCA, // kubelets prove who they are, too
		"kubelet-client-certificate":      c.APIServerKubeletCert,
		"kubelet-client-key":              c.APIServerKubeletKey,
		"kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
		// Aggregated APIs (metrics.k8s.io) are reached at their endpoints,
		// so a server without kube-proxy reaches them too.
		"enable-aggregator-routing":          "true",
		"profiling":                          "false",
		"proxy-client-cert-file":             c.ProxyClientCert,
		"proxy-client-key-file":              c.ProxyClientKey,
		"requestheader-allowed-names":        "system:auth-proxy",
		"requestheader-client-ca-file":       c.RequestHeaderCA,
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        fmt.Sprint(s.HTTPSPort),
		"service-account-issuer":             issuer,
		"service-account-key-file":           c.ServiceAccountKey,
		"service-account-signing-key-file":   c.ServiceAccountKey,
		"service-cluster-ip-range":           s.ServiceCIDRs.String(),
		"service-node-port-range":            s.ServiceNodePorts,
		"storage-backend":                    "etcd3",
		"tls-cert-file":                      c.ServingCert,
		"tls-private-key-file":               c.ServingKey,
	}
	if in.AuthenticationConfig != "" {
		delete(m, "anonymous-auth")
		m["authentication-config"] = in.AuthenticationConfig
	}
	setIf(m, "admission-control-config-file", s.AdmissionConfigFile)
	setIf(m, "etcd-cafile", in.EtcdCAFile)
	setIf(m, "etcd-certfile", in.EtcdCertFile)
	setIf(m, "etcd-keyfile", in.EtcdKeyFile)
	if a := s.Audit; a.Path != "" {
		m["audit-log-path"] = a.Path
		m["audit-policy-file"] = in.AuditPolicyFile
		m["audit-log-maxage"] = fmt.Sprint(a.MaxAge)
		m["audit-log-maxbackup"] = fmt.Sprint(a.MaxBackup)
		if a.MaxSize > 0 {
			m["audit-log-maxsize"] = fmt.Sprint(a.MaxSize)
		}
	}
	if in.EncryptionConfig != "" {
		m["encryption-provider-config"] = in.EncryptionConfig
		m["encryption-provider-config-automatic-reload"] = "true"
	}
	return flags(m, s.ExtraArgs.APIServer)
}

// ControllerManager returns kube-controller-manager's flags.
func ControllerManager(in Inputs) []string {
	s := in.Server
	c := in.Certs
	// The signers take a file with one certificate: a CA's own (its
	// certificate file may be a trust bundle, see pki.CA).
	m := map[string]string{
		"allocate-node-cidrs": "true",
		"cluster-cidr":        s.ClusterCIDRs.String(),
		"cluster-signing-kube-apiserver-client-cert-file": c.ClientCANoChain,
		"cluster-signing-kube-apiserver-client-key-file":  c.ClientCAKey,
		"cluster-signing-kubelet-client-cert-file":        c.ClientCANoChain,
		"cluster-signing-kubelet-client-key-file":         c.ClientCAKey,
		"cluster-signing-kubelet-serving-cert-file":       c.KubeletCANoChain,
		"cluster-signing-kubelet-serving-key-file":        c.KubeletCAKey,
		"cluster-signing-legacy-unknown-cert-file":        c.ServerCANoChain,
		"cluster-signing-legacy-unknown-key-file":         c.ServerCAKey,
		"configure-cloud-routes":                          "false",
		"kubeconfig":                                      in.ControllerKubeconfig,
		// With a credential per controller, the controller-manager makes a
		// few requests per controller before it starts any (service account,
		// token); at the default 20/s that alone took about 5 s of a first
		// start, and the node's pod CIDR waits behind it.
		"kube-api-burst":                   "200",
		"kube-api-qps":                     "100",
		"leader-elect":                     "false", // kubox elects, see pkg/k8s/embedded
		"profiling":                        "false",
		"root-ca-file":                     c.ServerCA,
		"secure-port":                      "0", // no extra TCP listener
		"service-account-private-key-file": c.ServiceAccountKey,
		"service-cluster-ip-range":         s.ServiceCIDRs.String(),
		"use-service-account-credentials":  "true",
	}
	if s.ClusterCIDRs.DualStack() {
		// Upstream refuses --node-cidr-mask-size with two ranges; it takes
		// one size per family.
		m["node-cidr-mask-size-ipv4"] = fmt.Sprint(config.NodeCIDRMaskIPv4)
		m["node-cidr-mask-size-ipv6"] = fmt.Sprint(config.NodeCIDRMaskIPv6)
	}
	if OwnNodeIPAM(s) {
		m["controllers"] = "*,-node-ipam-controller"
	}
	return flags(m, s.ExtraArgs.ControllerManager)
}

// OwnNodeIPAM says whether the server runs upstream's node IPAM controller
// on its own, beside the controller-manager, instead of inside it (where
// it starts only once every other controller is built). A user whose
// --kube-controller-manager-arg sets how nodes get their ranges, or which
// controllers run, keeps it inside, where those flags apply.
func OwnNodeIPAM(s *config.Server) bool {
	for _, e := range s.ExtraArgs.ControllerManager {
		k, _, _ := strings.Cut(e, "=")
		switch k {
		case "controllers", "allocate-node-cidrs", "cidr-allocator-type", "cluster-cidr",
			"service-cluster-ip-range", "node-cidr-mask-size", "node-cidr-mask-size-ipv4", "node-cidr-mask-size-ipv6":
			return false
		}
	}
	return true
}

// NodeCIDRMaskSizes is the size of each node's range, one per cluster CIDR
// in its order, as the controller-manager's flags above set them.
func NodeCIDRMaskSizes(s *config.Server) []int {
	sizes := make([]int, len(s.ClusterCIDRs))
	for i, c := range s.ClusterCIDRs {
		sizes[i] = config.NodeCIDRMaskIPv4
		if c.IP.To4() == nil {
			sizes[i] = config.NodeCIDRMaskIPv6
		}
	}
	return sizes
}

// SchedulerFlags returns kube-scheduler's flags; its settings are in the
// configuration file SchedulerConfig describes.
func SchedulerFlags(in Inputs) []string {
	m := map[string]string{
		"config":      in.SchedulerConfigFile,
		"profiling":   "false",
		"secure-port": "0", // no extra TCP listener
	}
	return flags(m, in.Server.ExtraArgs.Scheduler)
}

// SchedulerConfig returns the scheduler's typed configuration.
func SchedulerConfig(in Inputs) *schedv1.KubeSchedulerConfiguration {
	leaderElect := false // kubox elects, see pkg/k8s/embedded
	cfg := &schedv1.KubeSchedulerConfiguration{
		ClientConnection: componentbasev1alpha1.ClientConnectionConfiguration{Kubeconfig: in.SchedulerKubeconfig},
		LeaderElection:   componentbasev1alpha1.LeaderElectionConfiguration{LeaderElect: &leaderElect},
	}
	cfg.APIVersion = schedv1.SchemeGroupVersion.String()
	cfg.Kind = "KubeSchedulerConfiguration"
	return cfg
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// flags renders m as sorted --name=value, with the user's extra name=value
// arguments replacing kubox's value of the same name.
func flags(m map[string]string, extra []string) []string {
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, "--"+k+"="+v)
	}
	sort.Strings(out)
	return out
}
