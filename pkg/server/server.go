// Package server wires the server role together: data dir, PKI, kubeconfigs
// and the join routes, then datastore → apiserver → RBAC → scheduler and
// controller-manager → deploy and the add-on controllers, each started once
// the previous one is ready.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubox-io/kubox/manifests"
	"github.com/kubox-io/kubox/pkg/addons"
	"github.com/kubox-io/kubox/pkg/atomicfile"
	"github.com/kubox-io/kubox/pkg/bundle"
	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/datastore"
	"github.com/kubox-io/kubox/pkg/deploy"
	"github.com/kubox-io/kubox/pkg/flock"
	"github.com/kubox-io/kubox/pkg/hostnet"
	"github.com/kubox-io/kubox/pkg/images"
	"github.com/kubox-io/kubox/pkg/k8s/args"
	"github.com/kubox-io/kubox/pkg/k8s/embedded"
	"github.com/kubox-io/kubox/pkg/kuboxmetrics"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/nodeaddress"
	"github.com/kubox-io/kubox/pkg/pki"
	"github.com/kubox-io/kubox/pkg/secretsenc"
	"github.com/kubox-io/kubox/pkg/snapshot"
)

// Server is a prepared server: directories, API port, certificates and
// kubeconfigs exist; Components runs it.
type Server struct {
	cfg   *config.Server
	certs pki.ControlPlane
	ln    net.Listener
	comps []component.Component
	// unlock releases the data dir's server lock.
	unlock func()
	// etcdPeers are the client URLs of the members a new member joins.
	etcdPeers []string
	// policiesReady is closed once the API server enforces the node
	// policies; the join route takes new nodes from then on.
	policiesReady chan struct{}
}

// New prepares a server. Close releases the API port if the server never
// runs.
func New(cfg *config.Server, log *logging.Logger) (*Server, error) {
	if err := prepareDirs(cfg); err != nil {
		return nil, err
	}
	unlock, err := lockDataDir(cfg.Paths)
	if err != nil {
		return nil, err
	}
	ln, err := listen(cfg)
	if err != nil {
		unlock()
		return nil, err
	}
	srv := &Server{cfg: cfg, ln: ln, unlock: unlock, policiesReady: make(chan struct{})}
	if err := srv.restore(log); err != nil {
		srv.Close()
		return nil, err
	}
	if e := cfg.Datastore.Etcd; e != nil && e.Join != nil {
		if srv.etcdPeers, err = srv.joinCluster(log); err != nil {
			srv.Close()
			return nil, err
		}
	}
	prepare := srv.prepare
	if datastore.New(cfg.Datastore, cfg.Paths).Shared() {
		prepare = srv.shareFiles
	} else if cfg.Token != "" {
		prepare = srv.prepareWithToken
	}
	if err := prepare(log); err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// encryptionConfig is the API server's encryption configuration: created
// with --secrets-encryption, and used whenever it exists, since Secrets it
// encrypted can only be read with it.
func (s *Server) encryptionConfig(log *logging.Logger) (string, error) {
	cfg := s.cfg
	path := cfg.Paths.EncryptionConfig
	if cfg.SecretsEncryption {
		c, err := secretsenc.Ensure(path, cfg.SecretsEncryptionProvider, time.Now())
		if err != nil {
			return "", fmt.Errorf("secrets encryption: %w", err)
		}
		if c.Provider != cfg.SecretsEncryptionProvider {
			log.Warnf("secrets stay encrypted with %s, as configured in %s; --secrets-encryption-provider applies to a new configuration only", c.Provider, path)
		}
		return path, nil
	}
	if _, err := os.Stat(path); err == nil {
		log.Warnf("secrets encryption stays on: %s exists and the secrets it encrypted need it", path)
		return path, nil
	}
	return "", nil
}

// defaultAuditPolicy records who did what to which object, never the
// bodies of requests or answers (which hold Secrets' values).
const defaultAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
`

// auditPolicyFile is the user's audit policy, or kubox's default written
// to the server's configuration directory; "" without an audit log.
func auditPolicyFile(cfg *config.Server) (string, error) {
	a := cfg.Audit
	if a.Path == "" || a.PolicyFile != "" {
		return a.PolicyFile, nil
	}
	if err := os.MkdirAll(filepath.Dir(a.Path), 0o700); err != nil {
		return "", fmt.Errorf("cannot use --audit-log-path %s: %v", a.Path, unwrapPath(err))
	}
	path := filepath.Join(cfg.Paths.ConfDir, "audit-policy.yaml")
	return path, writeFile(path, []byte(defaultAuditPolicy))
}

// anonymousHealthOnly lets requests without credentials reach the health
// and version paths only: load balancers and probes need those, while
// /metrics and the API answer 401, not a 403 that confirms a path exists.
const anonymousHealthOnly = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
  - path: /version
`

// authenticationConfigFile writes the API server's authentication
// configuration when anonymous requests are allowed; "" when they are not,
// or when the user's --kube-apiserver-arg decides authentication itself.
func authenticationConfigFile(cfg *config.Server) (string, error) {
	if !cfg.AnonymousAuth {
		return "", nil
	}
	for _, a := range cfg.ExtraArgs.APIServer {
		if name, _, _ := strings.Cut(a, "="); name == "anonymous-auth" || name == "authentication-config" {
			return "", nil
		}
	}
	path := filepath.Join(cfg.Paths.ConfDir, "authentication.yaml")
	return path, writeFile(path, []byte(anonymousHealthOnly))
}

// lockDataDir takes the data dir's server lock, held while the server
// runs: a second server on the same data dir, or a restore under a
// running one, is refused.
func lockDataDir(p paths.Paths) (func(), error) {
	unlock, err := flock.TryExclusive(p.ServerLock)
	if errors.Is(err, flock.ErrHeld) {
		return nil, fmt.Errorf("another kubox server is running with --data-dir %s: stop it first (systemctl stop kubox, or kubox killall)", p.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot lock --data-dir %s: %w; it must be on a local file system that supports flock", p.DataDir, err)
	}
	return unlock, nil
}

// restore replaces the datastore with --cluster-reset-restore-path's
// snapshot, once: a restart with the same flags (a service that still has
// them) starts from the current state instead of rolling back again.
func (s *Server) restore(log *logging.Logger) error {
	from := s.cfg.RestoreFrom
	if from == "" {
		return nil
	}
	dbFile := s.cfg.Datastore.SQLiteFile(s.cfg.Paths)
	// A name only in S3 is fetched first.
	store := snapshot.Store{Dir: s.cfg.Snapshots.Dir, S3: s.cfg.Snapshots.S3}
	from, err := store.Fetch(context.Background(), from)
	if err != nil {
		return err
	}
	m, err := snapshot.Verify(from)
	if err != nil {
		return err
	}
	e := s.cfg.Datastore.Etcd
	if e != nil {
		dbFile = e.DataDir // the restore is recorded beside it
	}
	if last, ok := snapshot.LastRestore(dbFile); ok && m.SHA256 != "" && last.SHA256 == m.SHA256 {
		log.Warnf("snapshot %s was restored at %s already; starting from the current state: remove --cluster-reset and --cluster-reset-restore-path", from, last.At.Format(time.RFC3339))
		return nil
	}
	var r snapshot.Restored
	if e != nil {
		r, err = snapshot.RestoreEtcd(from, snapshot.EtcdMember{Name: e.Name, DataDir: e.DataDir, PeerURL: e.PeerURL()}, time.Now())
	} else {
		r, err = snapshot.RestoreSQLite(context.Background(), from, dbFile, time.Now())
	}
	if err != nil {
		return err
	}
	kept := "there was none"
	if r.PreRestore != "" {
		kept = "it is in " + r.PreRestore
	}
	log.Infof("restored the datastore from snapshot %s (revision %d); previous database: %s", from, r.Revision, kept)
	log.Warnf("remove --cluster-reset and --cluster-reset-restore-path from the server's flags or config: a later restart with them does not restore again")
	return nil
}

// Components are the control plane's components in start order.
func (s *Server) Components() []component.Component { return s.comps }

// Close releases the API port and the data dir.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.unlock()
	return err
}

func (s *Server) prepare(log *logging.Logger) error {
	cfg, ln, p := s.cfg, s.ln, s.cfg.Paths

	sans := servingSANs(cfg, hostnet.Addresses())
	certs, notes, err := pki.EnsureControlPlane(p.TLSDir, sans, cfg.CertValidity, config.RenewBefore(cfg.CertValidity), time.Now())
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if e := cfg.Datastore.Etcd; e != nil {
		_, etcdNotes, err := pki.EnsureEtcd(e.TLSDir, pki.SANs{DNSNames: []string{e.Name}, IPs: []net.IP{e.AdvertiseIP}},
			cfg.CertValidity, config.RenewBefore(cfg.CertValidity), time.Now())
		if err != nil {
			return fmt.Errorf("etcd certificates: %w", err)
		}
		notes = append(notes, etcdNotes...)
	}
	for _, n := range notes {
		log.Infof("%s", n)
	}
	caPEM, err := os.ReadFile(certs.ServerCA)
	if err != nil {
		return err
	}
	secret, err := joinToken(p.TokenFile, caPEM)
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	url := cfg.LocalURL()
	controllerKC := filepath.Join(p.CredDir, "controller.kubeconfig")
	schedulerKC := filepath.Join(p.CredDir, "scheduler.kubeconfig")
	for _, kc := range []struct{ path, cert, key string }{
		{controllerKC, certs.ControllerCert, certs.ControllerKey},
		{schedulerKC, certs.SchedulerCert, certs.SchedulerKey},
		{p.AdminKubeconfig, certs.AdminCert, certs.AdminKey},
	} {
		if err := pki.WriteKubeconfigForFiles(kc.path, url, caPEM, kc.cert, kc.key); err != nil {
			return err
		}
	}
	s.certs = certs
	if err := s.writeAdminKubeconfig(); err != nil {
		return err
	}
	log.Infof("wrote admin kubeconfig to %s", cfg.Kubeconfig)

	encryption, err := s.encryptionConfig(log)
	if err != nil {
		return err
	}
	auditPolicy, err := auditPolicyFile(cfg)
	if err != nil {
		return err
	}
	authConfig, err := authenticationConfigFile(cfg)
	if err != nil {
		return err
	}
	// The profile's admission configuration (--profile cis); a user's
	// file is used where it is.
	if cfg.AdmissionConfig != nil {
		if err := writeFile(cfg.AdmissionConfigFile, cfg.AdmissionConfig); err != nil {
			return fmt.Errorf("admission configuration: %w", err)
		}
	}
	ds := datastore.New(cfg.Datastore, p)
	ds.JoinPeers, ds.Log, ds.Metrics = s.etcdPeers, log.For("datastore"), kuboxmetrics.Shared()
	in := func() args.Inputs {
		ep := ds.Endpoint()
		return args.Inputs{
			Server: cfg, Certs: certs,
			EtcdServers: ep.Servers, EtcdCAFile: ep.CAFile, EtcdCertFile: ep.CertFile, EtcdKeyFile: ep.KeyFile,
			ControllerKubeconfig: controllerKC,
			SchedulerKubeconfig:  schedulerKC,
			SchedulerConfigFile:  filepath.Join(p.ConfDir, "scheduler.yaml"),
			EncryptionConfig:     encryption,
			AuditPolicyFile:      auditPolicy,
			AuthenticationConfig: authConfig,
		}
	}
	s.certs = certs
	wrap, err := s.joinHandler(secret, caPEM, sans, log)
	if err != nil {
		return fmt.Errorf("join endpoint: %w", err)
	}
	apiserver := &component.Lazy{ComponentName: "apiserver", Build: func() (component.Component, error) {
		return embedded.NewAPIServer(embedded.APIServerConfig{
			Args: args.APIServer(in()), Listener: ln, WrapHandler: wrap,
			ReadyURL: url + "/readyz", CAFile: certs.ServerCA, CertFile: certs.AdminCert, KeyFile: certs.AdminKey,
		})
	}}
	scheduler := &component.Lazy{ComponentName: "scheduler", Build: func() (component.Component, error) {
		i := in()
		data, err := yaml.Marshal(args.SchedulerConfig(i))
		if err != nil {
			return nil, err
		}
		if err := writeFile(i.SchedulerConfigFile, data); err != nil {
			return nil, err
		}
		return embedded.NewScheduler(args.SchedulerFlags(i), embedded.LeaderElection{Enabled: ds.Endpoint().LeaderElect, Kubeconfig: schedulerKC})
	}}
	controllers := &component.Lazy{ComponentName: "controller-manager", Build: func() (component.Component, error) {
		return embedded.NewControllerManager(args.ControllerManager(in()), embedded.LeaderElection{Enabled: ds.Endpoint().LeaderElect, Kubeconfig: controllerKC})
	}}

	rbac := &component.Step{StepName: "rbac", Do: func(ctx context.Context) error {
		return ensureRBAC(ctx, p.AdminKubeconfig)
	}}
	// New nodes are let in once the node-volumes policy is enforced (the
	// join route answers 503 until then). Nothing in this process waits
	// for it: the server's own node runs kubox's own code.
	nodePolicies := &component.Func{ComponentName: "node-policies", Run: func(ctx context.Context) error {
		if err := waitNodeVolumesEnforced(ctx, p.AdminKubeconfig); err != nil {
			return err
		}
		close(s.policiesReady)
		<-ctx.Done()
		return nil
	}}
	if err := writeAddons(cfg, certs.ServerCA, log); err != nil {
		return err
	}
	manifests := &deploy.Controller{Dir: p.ManifestsDir, Kubeconfig: p.AdminKubeconfig, Log: log.For("deploy")}
	// The deploy controller is kubox's own: restarted when it fails. The
	// embedded upstream components start once per process.
	// Before any kubelet registers: it sets every node's addresses, and
	// nodes stay tainted until it has.
	cloudNode := &component.Lazy{ComponentName: "cloud-node", Build: func() (component.Component, error) {
		le := embedded.LeaderElection{Enabled: ds.Endpoint().LeaderElect, Kubeconfig: p.AdminKubeconfig}
		return &component.Restart{Log: log, Inner: &component.Func{ComponentName: "cloud-node",
			Run: le.Wrap("kubox-cloud-node", func(ctx context.Context) error { return nodeaddress.Run(ctx, p.AdminKubeconfig) })}}, nil
	}}
	s.comps = []component.Component{ds, apiserver, rbac, nodePolicies, cloudNode}
	if cfg.ControllerManager && args.OwnNodeIPAM(cfg) {
		// Before the controller-manager, which builds every other
		// controller first: a node gets its podCIDR, and its pod network
		// starts, as soon as it registers.
		s.comps = append(s.comps, &component.Lazy{ComponentName: "node-ipam", Build: func() (component.Component, error) {
			le := embedded.LeaderElection{Enabled: ds.Endpoint().LeaderElect, Kubeconfig: p.AdminKubeconfig}
			ipam := embedded.NodeIPAM{Kubeconfig: p.AdminKubeconfig, ClusterCIDRs: cfg.ClusterCIDRs,
				ServiceCIDRs: cfg.ServiceCIDRs, MaskSizes: args.NodeCIDRMaskSizes(cfg)}
			return &component.Restart{Log: log, Inner: &component.Func{ComponentName: "node-ipam", Run: le.Wrap("kubox-node-ipam", ipam.Run)}}, nil
		}})
	}
	if cfg.Scheduler {
		s.comps = append(s.comps, scheduler)
	}
	if cfg.ControllerManager {
		s.comps = append(s.comps, controllers)
	}
	s.comps = append(s.comps, &component.Restart{Inner: &component.Func{ComponentName: "deploy", Run: manifests.Run}, Log: log})
	// The add-ons' own controllers, unless --disable names them.
	comps, err := addons.ServerComponents(addons.ServerEnv{Config: cfg, Certs: certs, CAPEM: caPEM, Log: log,
		LeaderElect: func() bool { return ds.Endpoint().LeaderElect }}, cfg.Disabled)
	if err != nil {
		return err
	}
	s.comps = append(s.comps, comps...)
	s.comps = append(s.comps, &component.Restart{Log: log, Inner: &component.Func{ComponentName: "certificates",
		Run: func(ctx context.Context) error { return s.renewCertificates(ctx, log.For("certificates")) }}})
	if cfg.NodeName != "" {
		s.comps = append(s.comps, &component.Restart{Log: log, Inner: &component.Func{ComponentName: "node-roles",
			Run: func(ctx context.Context) error { return s.markNode(ctx, log.For("node-roles")) }}})
	}
	if cfg.Datastore.Etcd != nil {
		s.comps = append(s.comps, &component.Restart{Log: log, Inner: &component.Func{ComponentName: "etcd-members",
			Run: func(ctx context.Context) error { return s.etcdMembers(ctx, log.For("etcd-members")) }}})
	}
	if sched := s.scheduledSnapshots(log); sched != nil {
		s.comps = append(s.comps, sched)
	}
	return nil
}

// scheduledSnapshots is the component taking snapshots on
// --snapshot-schedule-cron, nil when disabled or when the datastore is one
// kubox cannot snapshot (Postgres, MySQL: the database's own backups).
func (s *Server) scheduledSnapshots(log *logging.Logger) component.Component {
	cfg := s.cfg
	if kind := cfg.Datastore.Kind(); cfg.Snapshots.Disabled || (kind != "sqlite" && kind != "etcd") {
		return nil
	}
	sched, err := config.ParseSchedule(cfg.Snapshots.Schedule) // validated in config
	if err != nil {
		return nil
	}
	store := snapshot.Store{Dir: cfg.Snapshots.Dir, Node: s.snapshotNode(), Datastore: cfg.Datastore, Paths: cfg.Paths, S3: cfg.Snapshots.S3}
	slog := log.For("snapshots")
	return &component.Func{ComponentName: "snapshots", Run: func(ctx context.Context) error {
		return store.RunScheduled(ctx, sched, cfg.Snapshots.Retention, slog)
	}}
}

// snapshotNode names the server's snapshots: its node, or the host.
func (s *Server) snapshotNode() string {
	if s.cfg.NodeName != "" {
		return s.cfg.NodeName
	}
	n, err := config.NodeName("")
	if err != nil {
		return "server"
	}
	return n
}

// prepareDirs creates the server's directories, and proves the data dir is
// writable before anything is written to it.
func prepareDirs(cfg *config.Server) error {
	p := cfg.Paths
	for _, d := range []string{p.DataDir, p.ServerDir, p.CredDir, p.ConfDir, p.ManifestsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("cannot use --data-dir %s: %v; choose a writable directory", p.DataDir, unwrapPath(err))
		}
	}
	probe, err := os.CreateTemp(p.ServerDir, ".write-test-")
	if err != nil {
		return fmt.Errorf("cannot use --data-dir %s: %v; choose a writable directory", p.DataDir, unwrapPath(err))
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// listen opens the API port first, so that a port in use stops the server
// before any other work.
func listen(cfg *config.Server) (net.Listener, error) {
	addr := net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("port %d is already in use (%s): stop the process using it or choose another --https-listen-port", cfg.HTTPSPort, addr)
		}
		return nil, fmt.Errorf("cannot listen on %s: %v; check --bind-address and --https-listen-port", addr, err)
	}
	return ln, nil
}

// servingSANs lists every name and address the API can be reached at;
// hostAddrs are the host's addresses, used when it listens on all of them.
func servingSANs(cfg *config.Server, hostAddrs []net.IP) pki.SANs {
	sans := pki.SANs{
		DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + cfg.ClusterDomain, "localhost"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, cfg.APIServiceIP(), cfg.AdvertiseAddress},
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		sans.DNSNames = append(sans.DNSNames, h)
	}
	if cfg.BindAddress.IsUnspecified() {
		for _, ip := range hostAddrs {
			// The pod network's own addresses (flannel.1, cni0) appear
			// only once the node runs; as SANs they would re-issue the
			// certificate on the next start and serve no client.
			if cfg.ClusterCIDRs.Contains(ip) || cfg.ServiceCIDRs.Contains(ip) {
				continue
			}
			sans.IPs = append(sans.IPs, ip)
		}
	} else {
		sans.IPs = append(sans.IPs, cfg.BindAddress)
	}
	for _, s := range cfg.TLSSANs {
		if ip := net.ParseIP(s); ip != nil {
			sans.IPs = append(sans.IPs, ip)
		} else {
			sans.DNSNames = append(sans.DNSNames, s)
		}
	}
	return sans
}

func writeFile(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}

// addonValues are what the add-on templates in manifests/ are rendered with.
type addonValues struct {
	ClusterDNS    string
	ClusterDomain string
	CoreDNSImage  string
	// The embedded metrics-server: where the API server reaches it, and
	// the CA bundle that verifies it.
	MetricsServerIP          string
	MetricsServerAddressType string // IPv4 or IPv6, for its EndpointSlice
	MetricsServerPort        int
	ServerCABundle           string
}

// writeAddons puts the built-in add-ons into the manifests directory, where
// the deploy controller applies them like any other manifest.
func writeAddons(cfg *config.Server, serverCA string, log *logging.Logger) error {
	disabled := addons.ManifestsOff(cfg.Disabled)
	v := addonValues{ClusterDNS: cfg.ClusterDNS.String(), ClusterDomain: cfg.ClusterDomain,
		MetricsServerIP: cfg.AdvertiseAddress.String(), MetricsServerAddressType: "IPv4", MetricsServerPort: config.MetricsServerPort}
	if cfg.AdvertiseAddress.To4() == nil {
		v.MetricsServerAddressType = "IPv6"
	}
	bundle64, err := caBundle(serverCA)
	if err != nil {
		return err
	}
	v.ServerCABundle = bundle64
	if sum, err := bundle.Sum("coredns"); err == nil {
		v.CoreDNSImage = images.CoreDNSRef(sum)
	} else if !disabled["coredns"] {
		log.Warnf("cluster DNS is off: %v", err)
		disabled["coredns"] = true
	}
	if err := deploy.WriteAddons(cfg.Paths.ManifestsDir, manifests.Addons, v, disabled); err != nil {
		return fmt.Errorf("writing the built-in add-ons: %w", err)
	}
	return nil
}

// Figures are where kubox's own metrics about this server come from.
func (s *Server) Figures(phases *component.Phases) kuboxmetrics.Sources {
	cfg := s.cfg
	src := kuboxmetrics.Sources{Phases: phases, CertDirs: cfg.Paths.CertDirs()}
	switch {
	case cfg.Datastore.Etcd != nil:
		src.DatastoreFiles = []string{filepath.Join(cfg.Datastore.Etcd.DataDir, "member", "snap", "db")}
	case cfg.Datastore.Kind() == "sqlite":
		db := cfg.Datastore.SQLiteFile(cfg.Paths)
		src.DatastoreFiles = []string{db, db + "-wal"}
	default:
		return src // a database kubox does not keep: no files, no snapshots
	}
	src.SnapshotDir = cfg.Snapshots.Dir
	return src
}
