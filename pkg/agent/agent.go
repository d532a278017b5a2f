// Package agent wires the node role together: host setup and bundled
// executables, containerd, system images, the kubelet, kube-proxy, the pod
// network, network policy, local-path storage, servicelb and air-gap image import, each
// started once the previous one is ready. Every one of them acts as the
// node (system:node:<name>), with the node's one credential. It runs inside `kubox server` or on its own given a server URL and
// credentials.
package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kubox-io/kubox/pkg/addons"
	"github.com/kubox-io/kubox/pkg/bundle"
	"github.com/kubox-io/kubox/pkg/cgroups"
	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/containerd"
	"github.com/kubox-io/kubox/pkg/flannel"
	"github.com/kubox-io/kubox/pkg/images"
	"github.com/kubox-io/kubox/pkg/k8s/args"
	"github.com/kubox-io/kubox/pkg/k8s/embedded"
	"github.com/kubox-io/kubox/pkg/killall"
	"github.com/kubox-io/kubox/pkg/kuboxmetrics"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/netpol"
	"github.com/kubox-io/kubox/pkg/nodeaddress"
	"github.com/kubox-io/kubox/pkg/registries"
	"github.com/kubox-io/kubox/pkg/syssetup"
)

// CgroupName is the cgroup kubox creates below its own for every pod.
const CgroupName = "kubox"

// Components returns the node's components in start order.
// The host part (host setup, containerd, system images) needs nothing of the
// cluster, so a server starts it beside its control plane; the cluster part
// (kubelet onward) needs the API. phases records the readiness of the
// components the cluster part starts side by side; nil for none.
func Components(a *config.Agent, p paths.Paths, creds config.NodeCredentials, log *logging.Logger, phases *component.Phases, imports *kuboxmetrics.Imports) (host, cluster []component.Component) {
	n := &node{a: a, p: p, creds: creds, log: log, imports: imports, netReady: make(chan struct{}), netFound: make(chan struct{})}
	// containerd (a child process; containers outlive it) and kubox's own
	// controllers are restarted when they fail; the embedded upstream
	// components can start once per process, so their failure ends it.
	restart := func(c component.Component) component.Component { return &component.Restart{Inner: c, Log: log} }
	host = []component.Component{
		&checkedStep{Step: component.Step{StepName: "node-setup", Do: n.setup}, check: func(context.Context) error { return CheckHost(a) }},
		n.registries(restart),
		restart(&component.Lazy{ComponentName: "containerd", Build: n.containerd}),
		&component.Step{StepName: "system-images", Do: n.systemImages},
		&component.Step{StepName: "air-gap-images", Do: n.preloadImages},
	}
	cluster = []component.Component{
		// Waits for the node's podCIDR, and makes flannel's subnet
		// manager meanwhile, while the kubelet registers the node; then
		// starts flannel on it.
		&component.Func{ComponentName: "pod-network-watch", Run: n.watchPodNetwork},
		// kube-proxy starts beside the kubelet: its informers and the set-up
		// of its rules overlap the kubelet's start. It needs the Node's
		// addresses, which a restarted node has already; on a first start
		// it waits for them (checking every 50 ms, see k8s-patch.sh).
		&component.Concurrent{ComponentName: "kubelet+kube-proxy", Log: log, Phases: phases, Lines: [][]component.Component{
			{
				&component.Lazy{ComponentName: "kubelet", Build: n.kubelet},
				// The node's addresses in annotations, from which the server's
				// cloud node controller sets them and lifts the node's taint.
				restart(&component.Func{ComponentName: "node-addresses", Run: n.announceAddresses}),
			},
			{&component.Lazy{ComponentName: "kube-proxy", Build: n.kubeProxy}},
		}},
		// Service rules before the pod network: pods start once the network
		// is up, and their first connection to a Service must be translated.
		&component.Func{ComponentName: "pod-network", Run: n.podNetwork, ReadyWhen: n.netReady},
	}
	if a.NetworkPolicy {
		// After the pod network, whose start the node's pods wait for.
		cluster = append(cluster, restart(&component.Func{ComponentName: "network-policy", Run: n.networkPolicy}))
	}
	cluster = append(cluster, restart(&component.Func{ComponentName: "image-import", Run: n.watchImages}))
	// The add-ons' node controllers (local-path storage, servicelb), or
	// what undoes them when --disable names them.
	cluster = append(cluster, addons.NodeComponents(addons.NodeEnv{Agent: a, Paths: p, Kubeconfig: creds.Kubeconfig, Log: log}, a.Disabled)...)
	return host, cluster
}

// checkedStep is a Step whose check runs before any component starts.
type checkedStep struct {
	component.Step
	check func(context.Context) error
}

// Init implements component.Initializer.
func (c *checkedStep) Init(ctx context.Context) error { return c.check(ctx) }

// CheckHost fails, in one line, when the host lacks what the node's
// settings need; it changes nothing, so a server calls it before it
// prepares anything.
func CheckHost(a *config.Agent) error {
	needs := syssetup.BackendNeeds(a.FlannelBackend)
	if len(needs) == 0 {
		return nil // vxlan, host-gw and none need nothing the node-setup checks miss
	}
	for _, r := range syssetup.Only(syssetup.Check(), needs) {
		if !r.OK {
			return fmt.Errorf("--flannel-backend %s needs the kernel's %s, which this host lacks: %s; or choose another --flannel-backend (vxlan or host-gw)",
				a.FlannelBackend, r.Name, r.Fix)
		}
	}
	return nil
}

// node holds what the components learn at start (bundle, cgroup root) for
// the ones that follow.
type node struct {
	a     *config.Agent
	p     paths.Paths
	creds config.NodeCredentials
	log   *logging.Logger
	// imports counts image archive imports for kubox's metrics; nil for none.
	imports *kuboxmetrics.Imports

	bundle     bundle.Bundle
	cgroupRoot string
	cgroupV1   bool
	pause      images.Image
	resolvConf string
	// netFound is closed once the node's podCIDRs are known and flannel
	// runs on them (podCIDRs, mtu) or cannot (netErr); netReady once the
	// CNI configuration is written.
	netFound chan struct{}
	podCIDRs []*net.IPNet
	mtu      int // flannel's; 0 with --flannel-backend none
	flannel  *flannel.Prepared
	netErr   error
	netReady chan struct{}
	// archives: what was imported from agent/images, from before the
	// kubelet started on.
	archives *archiveState
	// proxyReady: the registry proxy listens and the hosts directories
	// name its address.
	proxyReady atomic.Bool
}

func (n *node) setup(ctx context.Context) error {
	reqs := syssetup.Check()
	if err := syssetup.Missing(reqs); err != nil {
		return err
	}
	if n.a.NetworkPolicy {
		needs := syssetup.NetworkPolicyNeeds()
		if err := syssetup.Missing(syssetup.Require(syssetup.Only(reqs, needs), needs)); err != nil {
			return fmt.Errorf("%w; or start with --disable-network-policy", err)
		}
	} else if err := n.networkPolicyOff(); err != nil {
		return err
	}
	if err := syssetup.Apply(n.a.ClusterCIDRs.Family(true) != nil); err != nil {
		return err
	}
	if !syssetup.HasCapSysResource() {
		n.log.Infof("CAP_SYS_RESOURCE is missing: containerd will clamp pods' oom_score_adj to its own instead of lowering it")
	}
	b, err := bundle.Extract(n.p.DataDir)
	if err != nil {
		return err
	}
	n.bundle = b
	layout, err := cgroups.Detect()
	if err != nil {
		return fmt.Errorf("reading this process's cgroups: %w", err)
	}
	n.cgroupV1 = !layout.Unified
	n.cgroupRoot = layout.Root(CgroupName)
	if _, err := layout.Prepare(n.cgroupRoot); err != nil {
		return fmt.Errorf("%w; kubox needs write access to the cgroup it was started in", err)
	}
	n.log.Infof("pods' cgroups go below %s", n.cgroupRoot)
	if n.pause, err = images.Pause(b.BinDir); err != nil {
		return err
	}
	if n.resolvConf, err = n.podResolvConf(); err != nil {
		return err
	}
	for _, d := range []string{n.p.AgentDir, n.p.ImagesDir, n.p.AgentConfDir, n.p.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("cannot create %s: %w", d, err)
		}
	}
	return nil
}

func (n *node) containerd() (component.Component, error) {
	return &containerd.Process{
		Config: containerd.Config{
			Root:                n.p.ContainerdRoot,
			State:               n.p.ContainerdState,
			Address:             n.p.ContainerdSocket,
			BinDir:              n.bundle.BinDir,
			CNIConfDir:          n.p.CNIConfDir,
			SandboxImage:        n.pause.Ref,
			RestrictOOMScoreAdj: !syssetup.HasCapSysResource(),
			RegistryConfigDir:   n.p.RegistryDir,
			RegistryAuth:        n.a.Registries.Credentials(),
			Debug:               n.a.Debug,
		},
		ConfigFile: n.p.ContainerdConfig,
		Log:        n.log.Writer("containerd"),
	}, nil
}

// registries writes containerd's hosts directories from registries.yaml
// before containerd starts; with rewrites, it is the loopback proxy that
// serves them, which writes the directories once it knows its port.
func (n *node) registries(restart func(component.Component) component.Component) component.Component {
	if !n.a.Registries.NeedsProxy() {
		return &component.Step{StepName: "registries", Do: func(context.Context) error { return n.writeHosts("", "") }}
	}
	return restart(&component.Func{ComponentName: "registry-proxy", Run: n.registryProxy,
		ReadyCheck: func(context.Context) error {
			if !n.proxyReady.Load() {
				return fmt.Errorf("the registry proxy is starting")
			}
			return nil
		}})
}

// writeHosts replaces the hosts directories kubox wrote before; proxy and
// secret are the rewrite proxy's URL and secret.
func (n *node) writeHosts(proxy, secret string) error {
	files := n.a.Registries.HostsFiles(proxy, secret)
	removed, err := registries.WriteHosts(n.p.RegistryDir, files)
	if err != nil {
		return fmt.Errorf("writing containerd's registry hosts in %s: %w", n.p.RegistryDir, err)
	}
	if len(removed) > 0 {
		n.log.Infof("registries: removed the hosts of %s, which %s no longer names", strings.Join(removed, ", "), registriesFile(n.a.Registries))
	}
	if len(files) > 0 {
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		slices.Sort(names)
		n.log.Infof("registries: hosts of %s written from %s", strings.Join(names, ", "), n.a.Registries.File)
	}
	return nil
}

func registriesFile(c *registries.Config) string {
	if c == nil {
		return "registries.yaml"
	}
	return c.File
}

// registryProxy serves the mirrors with rewrites on a loopback port chosen
// now; a proxy started again (after a failure) takes another, and
// containerd reads the hosts directories at each pull.
func (n *node) registryProxy(ctx context.Context) error {
	n.proxyReady.Store(false)
	p, err := registries.NewProxy(n.a.Registries)
	if err != nil {
		return err
	}
	log := n.log.For("registry-proxy")
	p.Logf = log.Warnf
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := n.writeHosts("http://"+ln.Addr().String(), p.Secret()); err != nil {
		ln.Close()
		return err
	}
	log.Infof("serving the mirrors with rewrites on %s", ln.Addr())
	n.proxyReady.Store(true)
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); ctx.Err() == nil {
		return err
	}
	return nil
}

// systemImages imports the images kubox makes itself (pause, CoreDNS),
// each once per version.
func (n *node) systemImages(ctx context.Context) error {
	// CoreDNS's image packs a 55 MB executable: it is named from the
	// payload's manifest and built only when containerd lacks it, or every
	// start would read and hash it. Its archive streams into the import.
	coreDNSRef := ""
	if sum, err := bundle.Sum("coredns"); err == nil {
		coreDNSRef = images.CoreDNSRef(sum)
	}
	builders := []struct {
		ref   string // known before building, or ""
		build func(string) (images.Image, error)
	}{{"", images.Pause}, {coreDNSRef, images.CoreDNS}}
	var imported []string
	for _, b := range builders {
		if b.ref != "" && containerd.HasImage(ctx, n.p.ContainerdSocket, b.ref) {
			continue
		}
		img, err := b.build(n.bundle.BinDir)
		if err != nil {
			return err
		}
		if containerd.HasImage(ctx, n.p.ContainerdSocket, img.Ref) {
			continue
		}
		archive := img.Open()
		names, err := containerd.Import(ctx, n.p.ContainerdSocket, archive, containerd.ImportOptions{Pinned: true})
		archive.Close()
		if err != nil {
			return fmt.Errorf("importing %s: %w", img.Ref, err)
		}
		imported = append(imported, names...)
	}
	if len(imported) > 0 {
		n.log.Infof("imported system images %s", strings.Join(imported, ", "))
		// The archives are garbage now; without this the heap they grew
		// stays resident until the next collection, which a large heap
		// goal puts far off.
		debug.FreeOSMemory()
	}
	return nil
}

func (n *node) inputs() args.NodeInputs {
	return args.NodeInputs{
		Agent: n.a, Paths: n.p,
		KubeletKubeconfig:   n.creds.Kubeconfig,
		KubeProxyKubeconfig: n.creds.Kubeconfig,
		ClientCAFile:        n.creds.ClientCAFile,
		ServingCert:         n.creds.ServingCert,
		ServingKey:          n.creds.ServingKey,
		CgroupRoot:          n.cgroupRoot,
		CgroupV1:            n.cgroupV1,
		ResolvConf:          n.resolvConf,
		KubeletConfigFile:   filepath.Join(n.p.AgentConfDir, "kubelet.yaml"),
	}
}

func (n *node) kubelet() (component.Component, error) {
	in := n.inputs()
	data, err := yaml.Marshal(args.KubeletConfig(in))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(in.KubeletConfigFile, data, 0o600); err != nil {
		return nil, err
	}
	return embedded.NewKubelet(in.KubeletConfigFile, args.KubeletFlags(in))
}

func (n *node) kubeProxy() (component.Component, error) {
	return embedded.NewKubeProxy(args.KubeProxyFlags(n.inputs()))
}

// announceAddresses states the node's addresses on its Node.
func (n *node) announceAddresses(ctx context.Context) error {
	return nodeaddress.Announce(ctx, nodeaddress.Node{
		Name:        n.a.NodeName,
		Kubeconfig:  n.creds.Kubeconfig,
		InternalIPs: n.a.NodeIPs,
		ExternalIPs: n.a.NodeExternalIPs,
		Log:         n.log.For("node-addresses"),
	})
}

// networkPolicy enforces NetworkPolicies for the node's pods.
func (n *node) networkPolicy(ctx context.Context) error {
	return netpol.Run(ctx, netpol.Config{
		NodeName:      n.a.NodeName,
		Kubeconfig:    n.creds.Kubeconfig,
		ServiceCIDRs:  n.a.ServiceCIDRs,
		NodePortRange: n.a.NodePorts,
		Log:           n.log.For("network-policy"),
	})
}

// networkPolicyOff takes away the rules and ipsets of an earlier run that
// enforced NetworkPolicies, which would otherwise go on enforcing the
// policies of then. It runs before this node's kube-proxy, whose rules the
// rewrite of the tables could race with.
func (n *node) networkPolicyOff() error {
	removed := 0
	for _, fam := range []string{"iptables", "ip6tables"} {
		k, err := killall.RemoveChains(fam, netpol.ChainPrefixes())
		if err != nil {
			return fmt.Errorf("removing the network policy rules of an earlier run: %w", err)
		}
		removed += k
	}
	sets, err := killall.RemoveIPSets()
	if err != nil {
		return fmt.Errorf("removing the network policy ipsets of an earlier run: %w", err)
	}
	if removed+sets > 0 {
		n.log.Infof("network policy is off: removed %d rules and chains and %d ipsets of an earlier run", removed, sets)
	}
	return nil
}

func (n *node) client() (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", n.creds.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}
