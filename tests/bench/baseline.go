package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	criv1 "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubox-io/kubox/manifests"
	"github.com/kubox-io/kubox/pkg/cgroups"
	"github.com/kubox-io/kubox/pkg/containerd"
	"github.com/kubox-io/kubox/pkg/images"
	"github.com/kubox-io/kubox/pkg/pki"
)

// Addresses both kinds of node use, so that their work is the same.
const (
	clusterCIDR = "10.42.0.0/16"
	podSubnet   = "10.42.0.0/24"
	serviceCIDR = "10.43.0.0/16"
	clusterDNS  = "10.43.0.10"
	apiURL      = "https://" + nodeIP + ":6443"
	nodeName    = "bench"
)

// baseline is upstream Kubernetes laid out as kubeadm lays it out: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
// kube-proxy as separate processes, with containerd and runc, configured
// with kubeadm's flags. CoreDNS is the add-on kubeadm applies after the
// control plane is up; the pod network is the reference bridge plugin.
type baseline struct {
	binDir     string // kube-* and containerd built by the bench
	payloadBin string // runc, shim, CNI plugins, pause, coredns, crictl (kubox's payload)
	kuboxBin   string // for its kubectl
	dir        string
	logDir     string
	cg         *cgroup
	etcd       *etcdServer
	images     imagesInfo
	procs      []*proc
	containerd *proc
	cgLayout   cgroups.Layout
	cgRoot     string
	addonErr   chan error
}

func newBaseline(binDir, payloadBin, kuboxBin, dir, logDir string, cg *cgroup, img imagesInfo) (*baseline, error) {
	e, err := newEtcd(filepath.Join(binDir, "etcd"), filepath.Join(dir, "etcd"), logDir)
	if err != nil {
		return nil, err
	}
	l, err := cgroups.Detect()
	if err != nil {
		return nil, err
	}
	// The baseline's processes run in cg, one level below the bench: the
	// kubelet's cgroup root nests there, as kubox's does.
	name := filepath.Base(cg.dirs[0])
	own, hier := map[string]string{}, map[string]string{}
	for k, v := range l.Own {
		own[k] = v
		if v != "/" {
			own[k] = v + "/" + name
		}
	}
	for k, v := range l.Hierarchies {
		hier[k] = v
		if v != "/" {
			hier[k] = v + "/" + name
		}
	}
	l.Own, l.Hierarchies = own, hier
	return &baseline{binDir: binDir, payloadBin: payloadBin, kuboxBin: kuboxBin, dir: dir, logDir: logDir,
		cg: cg, etcd: e, images: img, cgLayout: l, cgRoot: l.Root("kubepods-bench")}, nil
}

func (b *baseline) Name() string       { return "baseline" }
func (b *baseline) Label() string      { return "upstream (5 processes + etcd)" }
func (b *baseline) Cgroup() *cgroup    { return b.cg }
func (b *baseline) Kubeconfig() string { return b.path("kubeconfig", "admin.conf") }
func (b *baseline) APIURL() string     { return apiURL }
func (b *baseline) path(p ...string) string {
	return filepath.Join(append([]string{b.dir}, p...)...)
}
func (b *baseline) sock() string                  { return b.path("run", "containerd", "containerd.sock") }
func (b *baseline) SQLiteFiles() (string, string) { return "", "" }

func (b *baseline) DataDirs() map[string]string {
	return map[string]string{
		"certificates and kubeconfigs": b.path("pki"),
		"etcd":                         b.etcd.dataDir,
		"containerd":                   b.path("containerd"),
		"kubelet":                      b.path("kubelet"),
	}
}

// certs makes what `kubeadm init phase certs/kubeconfig` makes.
func (b *baseline) certs() (pki.ControlPlane, error) {
	now := time.Now()
	sans := pki.SANs{
		DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", nodeName},
		IPs:      []net.IP{net.ParseIP("10.43.0.1"), net.ParseIP(nodeIP), net.ParseIP("127.0.0.1")},
	}
	cp, _, err := pki.EnsureControlPlane(b.path("pki"), sans, 0, 0, now)
	if err != nil {
		return cp, err
	}
	clientCA, err := pki.LoadOrCreateCA(cp.ClientCA, cp.ClientCAKey, "client-ca", 0, now)
	if err != nil {
		return cp, err
	}
	for _, c := range []struct{ name, cn, org string }{
		{"kubelet", "system:node:" + nodeName, "system:nodes"},
		{"kube-proxy", "system:kube-proxy", ""},
	} {
		spec := pki.CertSpec{CommonName: c.cn, Client: true}
		if c.org != "" {
			spec.Organization = []string{c.org}
		}
		if _, err := clientCA.EnsureCert(b.path("pki", c.name+".crt"), b.path("pki", c.name+".key"), spec, 0, now); err != nil {
			return cp, err
		}
	}
	caPEM, err := os.ReadFile(cp.ServerCA)
	if err != nil {
		return cp, err
	}
	for name, ck := range map[string][2]string{
		"admin.conf":              {cp.AdminCert, cp.AdminKey},
		"controller-manager.conf": {cp.ControllerCert, cp.ControllerKey},
		"scheduler.conf":          {cp.SchedulerCert, cp.SchedulerKey},
		"kubelet.conf":            {b.path("pki", "kubelet.crt"), b.path("pki", "kubelet.key")},
		"kube-proxy.conf":         {b.path("pki", "kube-proxy.crt"), b.path("pki", "kube-proxy.key")},
	} {
		if err := pki.WriteKubeconfig(b.path("kubeconfig", name), apiURL, caPEM, ck[0], ck[1], 0o600); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

func (b *baseline) writeConfigs(cp pki.ControlPlane) error {
	for _, d := range []string{"cni/net.d", "kubelet", "manifests", "run/containerd"} {
		if err := os.MkdirAll(b.path(d), 0o755); err != nil {
			return err
		}
	}
	cfg, err := containerd.Render(containerd.Config{
		Root: b.path("containerd"), State: b.path("run", "containerd"), Address: b.sock(),
		BinDir: b.payloadBin, CNIConfDir: b.path("cni", "net.d"), SandboxImage: b.images.Pause,
		RestrictOOMScoreAdj: true, RegistryConfigDir: b.path("certs.d"),
	})
	if err != nil {
		return err
	}
	conflist := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "bench", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
`, podSubnet, b.path("cni", "ipam"))
	// kubeadm's KubeletConfiguration, with the cgroup settings this host
	// needs (cgroupfs driver below the bench's cgroup, cgroup v1 allowed)
	// and kubox's eviction thresholds: upstream's 15% free image disk
	// would evict the baseline's CoreDNS on a large disk kubox runs on.
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 0s}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 0s, cacheUnauthorizedTTL: 0s}
cgroupDriver: cgroupfs
cgroupRoot: %q
failCgroupV1: false
clusterDNS: [%q]
clusterDomain: cluster.local
containerRuntimeEndpoint: %q
healthzBindAddress: 127.0.0.1
healthzPort: 10248
resolvConf: %q
staticPodPath: %q
failSwapOn: false
evictionHard: {imagefs.available: 5%%, nodefs.available: 5%%, memory.available: 100Mi}
`, cp.ClientCA, b.cgRoot, clusterDNS, "unix://"+b.sock(), b.path("resolv.conf"), b.path("manifests"))
	files := map[string]string{
		"containerd.toml":             string(cfg),
		"cni/net.d/10-bench.conflist": conflist,
		"kubelet/config.yaml":         kubelet,
		"resolv.conf":                 "nameserver " + noResolver + "\n",
	}
	for name, data := range files {
		if err := os.WriteFile(b.path(name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (b *baseline) Start(ctx context.Context, _ startOpts) error {
	first := true
	if _, err := os.Stat(b.Kubeconfig()); err == nil {
		first = false
	}
	cp, err := b.certs()
	if err != nil {
		return err
	}
	if err := b.writeConfigs(cp); err != nil {
		return err
	}
	if _, err := b.cgLayout.Prepare(b.cgRoot); err != nil {
		return err
	}
	if err := b.etcd.start(b.cg); err != nil {
		return err
	}
	// containerd finds the runc shim on PATH.
	ctrd, err := startProc(b.cg, b.logDir, "containerd", []string{"PATH=" + b.payloadBin + ":" + os.Getenv("PATH")},
		filepath.Join(b.binDir, "containerd"), "--config", b.path("containerd.toml"))
	if err != nil {
		return err
	}
	b.containerd = ctrd
	if err := b.importImages(ctx); err != nil {
		return err
	}
	bin := func(n string) string { return filepath.Join(b.binDir, n) }
	kc := func(n string) string { return b.path("kubeconfig", n) }
	comps := [][]string{
		{bin("kube-apiserver"),
			"--advertise-address=" + nodeIP,
			"--allow-privileged=true",
			"--authorization-mode=Node,RBAC",
			"--client-ca-file=" + cp.ClientCA,
			"--enable-admission-plugins=NodeRestriction",
			"--enable-bootstrap-token-auth=true",
			"--etcd-cafile=" + b.etcd.CA,
			"--etcd-certfile=" + b.etcd.Cert,
			"--etcd-keyfile=" + b.etcd.Key,
			"--etcd-servers=" + b.etcd.URL,
			"--kubelet-client-certificate=" + cp.APIServerKubeletCert,
			"--kubelet-client-key=" + cp.APIServerKubeletKey,
			"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
			"--proxy-client-cert-file=" + cp.ProxyClientCert,
			"--proxy-client-key-file=" + cp.ProxyClientKey,
			"--requestheader-allowed-names=system:auth-proxy",
			"--requestheader-client-ca-file=" + cp.RequestHeaderCA,
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-username-headers=X-Remote-User",
			"--secure-port=6443",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + cp.ServiceAccountKey,
			"--service-account-signing-key-file=" + cp.ServiceAccountKey,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--tls-cert-file=" + cp.ServingCert,
			"--tls-private-key-file=" + cp.ServingKey,
		},
		{bin("kube-controller-manager"),
			"--allocate-node-cidrs=true",
			"--authentication-kubeconfig=" + kc("controller-manager.conf"),
			"--authorization-kubeconfig=" + kc("controller-manager.conf"),
			"--bind-address=127.0.0.1",
			"--client-ca-file=" + cp.ClientCA,
			"--cluster-cidr=" + clusterCIDR,
			"--cluster-name=kubernetes",
			"--cluster-signing-cert-file=" + cp.ClientCA,
			"--cluster-signing-key-file=" + cp.ClientCAKey,
			"--controllers=*,bootstrapsigner,tokencleaner",
			"--kubeconfig=" + kc("controller-manager.conf"),
			"--leader-elect=false",
			"--requestheader-client-ca-file=" + cp.RequestHeaderCA,
			"--root-ca-file=" + cp.ServerCA,
			"--service-account-private-key-file=" + cp.ServiceAccountKey,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--use-service-account-credentials=true",
		},
		{bin("kube-scheduler"),
			"--authentication-kubeconfig=" + kc("scheduler.conf"),
			"--authorization-kubeconfig=" + kc("scheduler.conf"),
			"--bind-address=127.0.0.1",
			"--kubeconfig=" + kc("scheduler.conf"),
			"--leader-elect=false",
		},
		{bin("kubelet"),
			"--config=" + b.path("kubelet", "config.yaml"),
			"--kubeconfig=" + kc("kubelet.conf"),
			"--hostname-override=" + nodeName,
			"--node-ip=" + nodeIP,
			"--root-dir=" + b.path("kubelet"),
			"--cert-dir=" + b.path("kubelet", "pki"),
		},
		// A network namespace may not change the host's conntrack limits.
		{bin("kube-proxy"),
			"--kubeconfig=" + kc("kube-proxy.conf"),
			"--hostname-override=" + nodeName,
			"--cluster-cidr=" + clusterCIDR,
			"--proxy-mode=iptables",
			"--conntrack-max-per-core=0",
		},
	}
	for _, argv := range comps {
		p, err := startProc(b.cg, b.logDir, filepath.Base(argv[0]), nil, argv...)
		if err != nil {
			return err
		}
		b.procs = append(b.procs, p)
	}
	if first {
		b.addonErr = make(chan error, 1)
		go func() { b.addonErr <- b.applyCoreDNS(ctx) }()
	}
	return nil
}

// importImages loads pause and CoreDNS, as an air-gapped kubeadm node
// would have them loaded before `kubeadm init`.
func (b *baseline) importImages(ctx context.Context) error {
	// Wait for containerd to answer: on a restart the socket file of the
	// last run is there before the new containerd listens on it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("unix", b.sock(), time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || b.containerd.exited() {
			return fmt.Errorf("containerd did not start:\n%s", b.containerd.tail(10))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, mk := range []func(string) (images.Image, error){images.Pause, images.CoreDNS} {
		img, err := mk(b.payloadBin)
		if err != nil {
			return err
		}
		if containerd.HasImage(ctx, b.sock(), img.Ref) {
			continue
		}
		archive := img.Open()
		_, err = containerd.Import(ctx, b.sock(), archive, containerd.ImportOptions{Pinned: true})
		archive.Close()
		if err != nil {
			return fmt.Errorf("importing %s: %w", img.Ref, err)
		}
	}
	return nil
}

// applyCoreDNS waits for the API and applies the same CoreDNS manifest
// kubox deploys, with `kubectl apply`.
func (b *baseline) applyCoreDNS(ctx context.Context) error {
	tmpl, err := template.ParseFS(manifests.Addons, "coredns.yaml")
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]string{
		"ClusterDomain": "cluster.local", "ClusterDNS": clusterDNS, "CoreDNSImage": b.images.CoreDNS,
	}); err != nil {
		return err
	}
	file := b.path("coredns.yaml")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		return err
	}
	for {
		cmd := exec.CommandContext(ctx, b.kuboxBin, "kubectl", "--kubeconfig", b.Kubeconfig(), "apply", "-f", file)
		msg, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("applying CoreDNS: %v: %s", err, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *baseline) Stop() {
	// The five components stop side by side, as a host's service manager
	// stops them. kube-apiserver lingers for long after SIGTERM (it drains
	// the watches of clients that are stopping too); its state is in etcd,
	// so it is killed after a short grace, which changes nothing measured.
	var wg sync.WaitGroup
	for _, p := range b.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(2 * time.Second)
		}()
	}
	wg.Wait()
	b.procs = nil
	b.etcd.stop()
	if b.containerd != nil {
		b.containerd.stop(30 * time.Second)
		b.containerd = nil
	}
}

// Wipe removes every pod through the CRI (which also tears down their
// network namespaces and addresses), then everything the node wrote.
func (b *baseline) Wipe() error {
	if _, err := os.Stat(b.dir); err != nil {
		return nil
	}
	b.Stop()
	var errs []string
	if _, err := os.Stat(b.path("containerd")); err == nil {
		ctrd, err := startProc(b.cg, b.logDir, "containerd", []string{"PATH=" + b.payloadBin + ":" + os.Getenv("PATH")},
			filepath.Join(b.binDir, "containerd"), "--config", b.path("containerd.toml"))
		if err != nil {
			return err
		}
		if err := b.removeSandboxes(); err != nil {
			errs = append(errs, err.Error())
		}
		ctrd.stop(30 * time.Second)
	}
	// Anything left in the cgroup is the baseline's own (a shim whose
	// sandbox did not go): end it by PID.
	for _, pid := range b.cg.pids() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	time.Sleep(200 * time.Millisecond)
	if err := unmountUnder(b.dir); err != nil {
		errs = append(errs, err.Error())
	}
	removePodLogs(b.path("kubelet", "pods"))
	if err := b.cgLayout.Remove(b.cgRoot); err != nil {
		errs = append(errs, err.Error())
	}
	if err := b.etcd.wipe(); err != nil {
		errs = append(errs, err.Error())
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaning up the baseline: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (b *baseline) removeSandboxes() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		if _, err := os.Stat(b.sock()); err == nil {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("containerd did not come back to remove the pods")
		}
	}
	conn, err := grpc.NewClient("unix://"+b.sock(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rs := criv1.NewRuntimeServiceClient(conn)
	var list *criv1.ListPodSandboxResponse
	for {
		list, err = rs.ListPodSandbox(ctx, &criv1.ListPodSandboxRequest{})
		if err == nil {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("listing pods: %w", err)
		}
	}
	for _, s := range list.Items {
		if _, err := rs.StopPodSandbox(ctx, &criv1.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			return fmt.Errorf("stopping pod %s: %w", s.Metadata.GetName(), err)
		}
		if _, err := rs.RemovePodSandbox(ctx, &criv1.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			return fmt.Errorf("removing pod %s: %w", s.Metadata.GetName(), err)
		}
	}
	return nil
}

func (b *baseline) Failure() string {
	var out []string
	for _, p := range append(append([]*proc{}, b.procs...), b.containerd, b.etcd.p) {
		if p == nil {
			continue
		}
		if p.exited() {
			out = append(out, p.name+" exited:\n"+p.tail(10))
		}
	}
	if b.addonErr != nil {
		select {
		case err := <-b.addonErr:
			if err != nil {
				out = append(out, err.Error())
			}
		default:
		}
	}
	if len(out) == 0 {
		for _, p := range b.procs {
			out = append(out, "last lines of "+p.name+":\n"+p.tail(5))
		}
	}
	return strings.Join(out, "\n")
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	f.Close()
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	var errs []string
	for _, m := range mounts {
		if out, err := exec.Command("umount", "-l", m).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("umount %s: %s", m, strings.TrimSpace(string(out))))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removePodLogs removes the kubelet's /var/log/pods/<ns>_<name>_<uid>
// directories of the pods under podsDir, and the /var/log/containers links
// into them.
func removePodLogs(podsDir string) {
	entries, _ := os.ReadDir(podsDir)
	var gone []string
	for _, e := range entries {
		dirs, _ := filepath.Glob("/var/log/pods/*_" + e.Name())
		for _, d := range dirs {
			if os.RemoveAll(d) == nil {
				gone = append(gone, d)
			}
		}
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil {
			continue
		}
		for _, d := range gone {
			if strings.HasPrefix(target, d+"/") {
				_ = os.Remove(l)
			}
		}
	}
}
