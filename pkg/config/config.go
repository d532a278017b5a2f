// Package config turns the raw values a user gives (flags and config files)
// into kubox's typed configuration, once, with defaults filled in and every
// value validated. Everything downstream receives the typed structs.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/hostnet"
)

// RenewBefore is how long before expiry a certificate valid for validity
// is replaced: a third of its life, at most CertRenewBefore.
func RenewBefore(validity time.Duration) time.Duration {
	return min(validity/3, CertRenewBefore)
}

// Defaults, as a k3s user knows them.
const (
	DefaultDataDir        = paths.DefaultDataDir
	DefaultConfigDir      = "/etc/kubox"
	DefaultHTTPSPort      = 6443
	DefaultClusterCIDR    = "10.42.0.0/16"
	DefaultServiceCIDR    = "10.43.0.0/16"
	DefaultClusterDNS     = "10.43.0.10"
	DefaultClusterDomain  = "cluster.local"
	DefaultNodePortRange  = "30000-32767"
	DefaultKubeconfigMode = "0600"
	// CertRenewBefore is how close to expiry a certificate may get before
	// kubox replaces it (see RenewBefore for short-lived ones).
	CertRenewBefore = 120 * 24 * time.Hour
	// MetricsServerPort is where the embedded metrics-server serves the
	// metrics API to the API server, on the advertise address.
	MetricsServerPort = 10251
)

// ServerOptions are the raw values of `kubox server`, as bound to its flags
// and config file keys. Server() validates them into a Server.
type ServerOptions struct {
	DataDir             string
	ConfigDir           string
	BindAddress         string
	AdvertiseAddress    string
	HTTPSPort           int
	ClusterCIDR         string
	ServiceCIDR         string
	ClusterDNS          string
	ClusterDomain       string
	ServiceNodePorts    string
	TLSSANs             []string
	WriteKubeconfig     string
	WriteKubeconfigMode string
	DatastoreEndpoint   string
	DatastoreCAFile     string
	DatastoreCertFile   string
	DatastoreKeyFile    string
	// DatastoreCompactInterval is how often the datastore's history is
	// compacted; 0 means the default of 5 minutes.
	DatastoreCompactInterval time.Duration
	// NodeCertValidity is how long joining nodes' certificates are valid;
	// 0 means DefaultNodeCertValidity.
	NodeCertValidity time.Duration
	// CertValidity is how long the control plane's certificates (not its
	// CAs) are valid; 0 means DefaultCertValidity.
	CertValidity time.Duration
	// FlannelBackend is the cluster's pod network backend; "" means
	// DefaultFlannelBackend.
	FlannelBackend string
	APIServerArgs  []string
	ControllerArgs []string
	SchedulerArgs  []string
	Debug          bool
	Verbosity      int
	// LogFormat is "text" (or "") or "json".
	LogFormat string
	RunDir    string
	Disable   []string
	Snapshot  SnapshotOptions
	// SecretsEncryption turns on encryption of Secrets at rest with
	// SecretsEncryptionProvider ("" means aescbc).
	SecretsEncryption         bool
	SecretsEncryptionProvider string
	// Audit is the API server's audit log, raw.
	Audit Audit
	// Profile is the hardening profile (--profile): "" or ProfileCIS.
	Profile string
	// PodSecurityAdmissionConfigFile is the user's AdmissionConfiguration
	// for the PodSecurity plugin, "" for none (or the profile's).
	PodSecurityAdmissionConfigFile string
	// ClusterReset with ClusterResetRestorePath replaces the datastore
	// with a snapshot before the server starts.
	ClusterReset            bool
	ClusterResetRestorePath string
	// ClusterInit runs the datastore as an etcd member inside the server.
	ClusterInit bool
	// ServerURL, with Token or TokenFile, joins the cluster of that server
	// as another etcd member and control plane.
	ServerURL, Token, TokenFile string
	// DisableControllerManager runs the server without its
	// kube-controller-manager (another server's controllers serve the
	// cluster).
	DisableControllerManager bool
	// DisableScheduler runs the server without its kube-scheduler.
	DisableScheduler bool
}

// Addons are the built-in add-ons --disable can turn off.
var Addons = []string{"coredns", "local-storage", "servicelb", "metrics-server", "helm-controller"}

// Server is the validated configuration of a server.
type Server struct {
	Paths            paths.Paths
	BindAddress      net.IP
	AdvertiseAddress net.IP
	HTTPSPort        int
	// ClusterCIDRs and ServiceCIDRs have one range per IP family, the
	// primary first (two for a dual-stack cluster).
	ClusterCIDRs CIDRs
	ServiceCIDRs CIDRs
	// ClusterDNS is in the primary service range.
	ClusterDNS       net.IP
	ClusterDomain    string
	ServiceNodePorts string
	TLSSANs          []string
	Kubeconfig       string
	KubeconfigMode   os.FileMode
	Datastore        Datastore
	ExtraArgs        ExtraArgs
	Debug            bool
	Verbosity        int
	// LogFormat is LogFormatText or LogFormatJSON.
	LogFormat string
	// Disabled add-ons, by name.
	Disabled map[string]bool
	// FlannelBackend is the cluster's pod network backend, handed to
	// joining agents (the server's own node takes it from its options).
	FlannelBackend string
	// CertValidity is how long the control plane's leaf certificates are
	// valid; the server renews them while it runs, as nodes do theirs.
	CertValidity time.Duration
	// NodeCertValidity is how long the certificates of joining nodes are
	// valid; they renew them when two thirds have passed.
	NodeCertValidity time.Duration
	// NodeName is the server's own node, "" with --disable-agent: no
	// joining node may take it.
	NodeName string
	// SecretsEncryption: Secrets are stored encrypted with keys of
	// SecretsEncryptionProvider (Paths.EncryptionConfig).
	SecretsEncryption         bool
	SecretsEncryptionProvider string
	// Audit is the API server's audit log; off when Audit.Path is "".
	Audit Audit
	// Profile is the hardening profile, "" or ProfileCIS; what it implies
	// is filled in below and in the node's Agent.
	Profile string
	// AnonymousAuth: the API server answers requests without credentials
	// to its health and version paths (/livez, /readyz, /healthz,
	// /version); any other path answers 401 to them. Off with --profile
	// cis: every path then answers 401.
	AnonymousAuth bool
	// AdmissionConfigFile is the API server's admission configuration
	// (--admission-control-config-file), "" for none: the user's
	// --pod-security-admission-config-file, or with --profile cis
	// Paths.PodSecurityConfig.
	AdmissionConfigFile string
	// AdmissionConfig, when not nil, is what the server writes to
	// AdmissionConfigFile before the API server starts (the profile's);
	// nil when the file is the user's.
	AdmissionConfig []byte
	// Snapshots are taken on a schedule into Snapshots.Dir.
	Snapshots Snapshots
	// RestoreFrom is a snapshot file, or a snapshot's name in the snapshot
	// dir or S3, that replaces the datastore before the server starts
	// (--cluster-reset-restore-path), "" for none.
	RestoreFrom string
	// Token is the server token --token (or --token-file) gives a server
	// that does not join with --server, "" for none: servers sharing an
	// external datastore start with the same one. Its form is the join
	// protocol's to check.
	Token string
	// ControllerManager is false when another server's
	// kube-controller-manager serves the cluster.
	ControllerManager bool
	// Scheduler is false when another server's kube-scheduler serves the
	// cluster.
	Scheduler bool
}

// ExtraArgs are the user's escape hatch: upstream flags (without the leading
// dashes, as name=value) appended after kubox's own, so they win.
type ExtraArgs struct {
	APIServer         []string
	ControllerManager []string
	Scheduler         []string
}

// Datastore says where cluster state lives. An empty Endpoint means the
// embedded SQLite database.
type Datastore struct {
	Endpoint string
	CAFile   string
	CertFile string
	KeyFile  string
	// CompactInterval is how often the API server compacts the history
	// to the revision it saw one interval before, on etcd and kine alike
	// (kine compacts only when asked), as upstream does on etcd: a
	// client's continue token or watch older than that gets 410 Gone.
	CompactInterval time.Duration
	// Etcd is the member the server runs itself (--cluster-init), nil
	// otherwise; Endpoint and the TLS files then name it.
	Etcd *EmbeddedEtcd
}

// DefaultCompactInterval is the compaction period unless
// --datastore-compact-interval says otherwise.
const DefaultCompactInterval = 5 * time.Minute

// Audit configures the API server's audit log.
type Audit struct {
	// Path of the log file; "" for no audit log.
	Path string
	// PolicyFile is the user's audit policy; "" for kubox's, which
	// records every request's metadata.
	PolicyFile string
	// MaxAge (days), MaxBackup (files) and MaxSize (MB) bound the rotated
	// files; 0 means no bound (MaxSize: the API server's own default).
	MaxAge, MaxBackup, MaxSize int
}

func (a Audit) validate() (Audit, error) {
	if a.Path == "" {
		if a.PolicyFile != "" {
			return a, fmt.Errorf("--audit-policy-file needs --audit-log-path: say where the audit log goes")
		}
		return a, nil
	}
	var err error
	if a.Path, err = filepath.Abs(a.Path); err != nil {
		return a, fmt.Errorf("invalid --audit-log-path: %v", err)
	}
	for flag, v := range map[string]int{"--audit-log-maxage": a.MaxAge, "--audit-log-maxbackup": a.MaxBackup, "--audit-log-maxsize": a.MaxSize} {
		if v < 0 {
			return a, fmt.Errorf("invalid %s %d: must be 0 or more", flag, v)
		}
	}
	if a.PolicyFile != "" {
		if _, err := os.Stat(a.PolicyFile); err != nil {
			return a, fmt.Errorf("invalid --audit-policy-file: %v", err)
		}
	}
	return a, nil
}

// Log formats of --log-format: LogFormatText is the default.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// logFormat checks a --log-format value; "" is text.
func logFormat(f string) (string, error) {
	switch f {
	case "":
		return LogFormatText, nil
	case LogFormatText, LogFormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("invalid --log-format %q: use text or json", f)
}

// DefaultSecretsEncryptionProvider encrypts Secrets unless
// --secrets-encryption-provider says otherwise.
const DefaultSecretsEncryptionProvider = "aescbc"

// DefaultFlannelBackend is the pod network's backend unless
// --flannel-backend says otherwise.
const DefaultFlannelBackend = "vxlan"

// flannelBackend checks a --flannel-backend value; "" is the default.
func flannelBackend(b string) (string, error) {
	switch b {
	case "":
		return DefaultFlannelBackend, nil
	case "vxlan", "host-gw", "wireguard-native", "none":
		return b, nil
	}
	return "", fmt.Errorf("invalid --flannel-backend %q: use vxlan, host-gw, wireguard-native or none", b)
}

// DefaultNodeCertValidity is how long joining nodes' certificates are valid
// unless --node-cert-validity says otherwise; MinNodeCertValidity leaves a
// node time to renew.
const (
	DefaultNodeCertValidity = 365 * 24 * time.Hour
	MinNodeCertValidity     = time.Minute
	// DefaultCertValidity is the control plane's, unless --cert-validity
	// says otherwise.
	DefaultCertValidity = 365 * 24 * time.Hour
)

// Kind names the datastore backend.
func (d Datastore) Kind() string {
	switch {
	case d.Endpoint == "" || strings.HasPrefix(d.Endpoint, "sqlite://"):
		return "sqlite"
	case strings.HasPrefix(d.Endpoint, "postgres://"), strings.HasPrefix(d.Endpoint, "postgresql://"):
		return "postgres"
	case strings.HasPrefix(d.Endpoint, "mysql://"):
		return "mysql"
	default:
		return "etcd"
	}
}

// SQLiteFile is the database file of an SQLite datastore: the data dir's,
// or the one a sqlite:// endpoint names.
func (d Datastore) SQLiteFile(p paths.Paths) string {
	if rest, ok := strings.CutPrefix(d.Endpoint, "sqlite://"); ok {
		file, _, _ := strings.Cut(rest, "?")
		return file
	}
	return p.SQLiteFile
}

// APIServiceIP is the first address of the primary service CIDR, the
// ClusterIP of the `kubernetes` Service.
func (s *Server) APIServiceIP() net.IP {
	n := s.ServiceCIDRs.Primary()
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	ip[len(ip)-1]++
	return ip
}

// LocalURL is the API address kubox's own components and the admin
// kubeconfig use.
func (s *Server) LocalURL() string {
	host := "127.0.0.1"
	if s.BindAddress.To4() == nil && !s.BindAddress.IsUnspecified() {
		host = "[::1]"
	} else if !s.BindAddress.IsUnspecified() && !s.BindAddress.IsLoopback() {
		host = s.BindAddress.String()
	}
	return fmt.Sprintf("https://%s:%d", host, s.HTTPSPort)
}

// Server validates the options and fills in derived defaults. Each error
// names the flag and says what a valid value looks like.
func (o ServerOptions) Server() (*Server, error) {
	s := &Server{
		HTTPSPort:        o.HTTPSPort,
		ClusterDomain:    o.ClusterDomain,
		ServiceNodePorts: o.ServiceNodePorts,
		TLSSANs:          o.TLSSANs,
		Debug:            o.Debug,
		Verbosity:        o.Verbosity,
		Datastore: Datastore{
			Endpoint:        o.DatastoreEndpoint,
			CAFile:          o.DatastoreCAFile,
			CertFile:        o.DatastoreCertFile,
			KeyFile:         o.DatastoreKeyFile,
			CompactInterval: o.DatastoreCompactInterval,
		},
		ExtraArgs: ExtraArgs{
			APIServer:         o.APIServerArgs,
			ControllerManager: o.ControllerArgs,
			Scheduler:         o.SchedulerArgs,
		},
	}
	var err error
	if s.LogFormat, err = logFormat(o.LogFormat); err != nil {
		return nil, err
	}
	if s.Paths, err = dataPaths(o.DataDir, o.ConfigDir, o.RunDir); err != nil {
		return nil, err
	}

	if s.HTTPSPort < 1 || s.HTTPSPort > 65535 {
		return nil, fmt.Errorf("invalid --https-listen-port %d: must be between 1 and 65535", s.HTTPSPort)
	}
	switch {
	case o.DatastoreCompactInterval < 0:
		return nil, fmt.Errorf("invalid --datastore-compact-interval %s: must be positive, e.g. 5m", o.DatastoreCompactInterval)
	case o.DatastoreCompactInterval == 0:
		s.Datastore.CompactInterval = DefaultCompactInterval
	}
	if s.FlannelBackend, err = flannelBackend(o.FlannelBackend); err != nil {
		return nil, err
	}
	switch s.CertValidity = o.CertValidity; {
	case s.CertValidity == 0:
		s.CertValidity = DefaultCertValidity
	case s.CertValidity < MinNodeCertValidity:
		return nil, fmt.Errorf("invalid --cert-validity %s: must be at least %s, e.g. 8760h for a year", o.CertValidity, MinNodeCertValidity)
	}
	switch s.NodeCertValidity = o.NodeCertValidity; {
	case s.NodeCertValidity == 0:
		s.NodeCertValidity = DefaultNodeCertValidity
	case s.NodeCertValidity < MinNodeCertValidity:
		return nil, fmt.Errorf("invalid --node-cert-validity %s: must be at least %s, e.g. 8760h for a year", o.NodeCertValidity, MinNodeCertValidity)
	}
	if s.BindAddress, err = parseIP("--bind-address", o.BindAddress, "0.0.0.0"); err != nil {
		return nil, err
	}
	if o.AdvertiseAddress == "" {
		s.AdvertiseAddress = hostnet.PrimaryIP()
	} else if s.AdvertiseAddress, err = parseIP("--advertise-address", o.AdvertiseAddress, ""); err != nil {
		return nil, err
	}
	if s.ClusterCIDRs, s.ServiceCIDRs, err = networks(o.ClusterCIDR, o.ServiceCIDR); err != nil {
		return nil, err
	}
	if s.ClusterDNS, err = parseIP("--cluster-dns", o.ClusterDNS, DefaultClusterDNS); err != nil {
		return nil, err
	}
	if !s.ServiceCIDRs.Primary().Contains(s.ClusterDNS) {
		return nil, fmt.Errorf("invalid --cluster-dns %s: must lie inside --service-cidr %s", s.ClusterDNS, s.ServiceCIDRs.Primary())
	}
	if s.ClusterDomain == "" {
		s.ClusterDomain = DefaultClusterDomain
	}
	if strings.ContainsAny(s.ClusterDomain, " /_") || strings.HasPrefix(s.ClusterDomain, ".") {
		return nil, fmt.Errorf("invalid --cluster-domain %q: must be a DNS domain such as cluster.local", s.ClusterDomain)
	}
	if s.ServiceNodePorts == "" {
		s.ServiceNodePorts = DefaultNodePortRange
	}
	if err := checkPortRange(s.ServiceNodePorts); err != nil {
		return nil, err
	}
	s.Kubeconfig = o.WriteKubeconfig
	if s.Kubeconfig == "" {
		s.Kubeconfig = filepath.Join(s.Paths.ConfigDir, "kubox.yaml")
	}
	if s.Kubeconfig, err = filepath.Abs(s.Kubeconfig); err != nil {
		return nil, fmt.Errorf("invalid --write-kubeconfig: %w", err)
	}
	mode := o.WriteKubeconfigMode
	if mode == "" {
		mode = DefaultKubeconfigMode
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || m > 0o777 {
		return nil, fmt.Errorf("invalid --write-kubeconfig-mode %q: must be an octal file mode such as 0600 or 0644", mode)
	}
	s.KubeconfigMode = os.FileMode(m)
	if e, err := embeddedEtcd(o, s.Paths, s.AdvertiseAddress); err != nil {
		return nil, err
	} else if e != nil {
		e.CompactInterval = s.Datastore.CompactInterval
		s.Datastore = *e
	}
	if err := s.Datastore.validate(); err != nil {
		return nil, err
	}
	s.SecretsEncryption = o.SecretsEncryption
	switch s.SecretsEncryptionProvider = o.SecretsEncryptionProvider; s.SecretsEncryptionProvider {
	case "":
		s.SecretsEncryptionProvider = DefaultSecretsEncryptionProvider
	case "aescbc", "secretbox":
	default:
		return nil, fmt.Errorf("invalid --secrets-encryption-provider %q: choose aescbc or secretbox", o.SecretsEncryptionProvider)
	}
	if s.Profile, err = profile(o.Profile); err != nil {
		return nil, err
	}
	cis := s.Profile == ProfileCIS
	s.AnonymousAuth = !cis
	audit := o.Audit
	if cis {
		audit = cisAudit(audit, s.Paths.AuditLog)
	}
	if s.Audit, err = audit.validate(); err != nil {
		return nil, err
	}
	switch {
	case o.PodSecurityAdmissionConfigFile != "":
		if s.AdmissionConfigFile, err = podSecurityAdmission(o.PodSecurityAdmissionConfigFile); err != nil {
			return nil, err
		}
	case cis:
		s.AdmissionConfigFile = s.Paths.PodSecurityConfig
		s.AdmissionConfig = []byte(CISPodSecurityAdmission)
	}
	if s.Snapshots, err = o.Snapshot.Snapshots(s.Paths); err != nil {
		return nil, err
	}
	s.ControllerManager, s.Scheduler = !o.DisableControllerManager, !o.DisableScheduler
	if s.RestoreFrom, err = restorePath(o.ClusterReset, o.ClusterResetRestorePath, s.Datastore); err != nil {
		return nil, err
	}
	if o.ServerURL == "" {
		if s.Token, err = o.token(); err != nil {
			return nil, err
		}
	}
	if e := s.Datastore.Etcd; e != nil && o.ClusterReset && s.RestoreFrom == "" {
		e.ForceNewCluster = true
	}
	s.Disabled = map[string]bool{}
	for _, d := range o.Disable {
		known := false
		for _, a := range Addons {
			known = known || a == d
		}
		if !known {
			return nil, fmt.Errorf("invalid --disable %q: choose from %s", d, strings.Join(Addons, ", "))
		}
		s.Disabled[d] = true
	}
	for _, group := range [][]string{o.APIServerArgs, o.ControllerArgs, o.SchedulerArgs} {
		for _, a := range group {
			if strings.HasPrefix(a, "-") || a == "" {
				return nil, fmt.Errorf("invalid extra argument %q: give it as name=value without leading dashes", a)
			}
		}
	}
	return s, nil
}

// restorePath checks --cluster-reset and --cluster-reset-restore-path.
func restorePath(reset bool, path string, ds Datastore) (string, error) {
	switch {
	case !reset && path == "":
		return "", nil
	case !reset:
		return "", fmt.Errorf("--cluster-reset-restore-path needs --cluster-reset: add it to restore %s", path)
	case path == "" && ds.Etcd != nil:
		return "", nil // the member restarts as a one-member cluster
	case path == "":
		return "", fmt.Errorf("--cluster-reset needs --cluster-reset-restore-path FILE: a single server has no membership to reset; give the snapshot to restore (see 'kubox snapshot ls')")
	case ds.Kind() != "sqlite" && ds.Etcd == nil:
		return "", fmt.Errorf("--cluster-reset-restore-path restores kubox's own datastore (SQLite or --cluster-init's etcd); restore a %s datastore with its own tools, then start kubox", ds.Kind())
	}
	if !strings.Contains(path, "/") {
		return path, nil // a snapshot's name, in --snapshot-dir or S3
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("invalid --cluster-reset-restore-path %q: %v", path, err)
	}
	return abs, nil
}

func (d Datastore) validate() error {
	ep := d.Endpoint
	if ep == "" || d.Etcd != nil {
		return nil // SQLite, or a member whose files the server makes
	}
	switch d.Kind() {
	case "postgres", "mysql", "sqlite":
		return nil
	}
	for _, u := range strings.Split(ep, ",") {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("invalid --datastore-endpoint %q: use http(s)://host:port[,…] for etcd, postgres://… or mysql://… DSNs, or leave it empty for SQLite", u)
		}
	}
	for flag, f := range map[string]string{"--datastore-cafile": d.CAFile, "--datastore-certfile": d.CertFile, "--datastore-keyfile": d.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("invalid %s: %v", flag, err)
		}
	}
	return nil
}

func absDir(flag, dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("invalid %s: must not be empty", flag)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("invalid %s %q: %w", flag, dir, err)
	}
	return abs, nil
}

func parseIP(flag, v, def string) (net.IP, error) {
	if v == "" {
		v = def
	}
	ip := net.ParseIP(v)
	if ip == nil {
		return nil, fmt.Errorf("invalid %s %q: not an IP address (e.g. 10.0.0.1)", flag, v)
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return ip, nil
}

func parseCIDR(flag, v, def string) (*net.IPNet, error) {
	if v == "" {
		v = def
	}
	ip, n, err := net.ParseCIDR(v)
	if err != nil {
		return nil, fmt.Errorf("invalid %s %q: not a CIDR (e.g. %s)", flag, v, def)
	}
	if !ip.Equal(n.IP) {
		return nil, fmt.Errorf("invalid %s %q: host bits set; did you mean %s?", flag, v, n)
	}
	if ip4 := n.IP.To4(); ip4 != nil {
		n.IP = ip4
	}
	return n, nil
}

func checkPortRange(r string) error {
	lo, hi, ok := strings.Cut(r, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return fmt.Errorf("invalid --service-node-port-range %q: use low-high, e.g. %s", r, DefaultNodePortRange)
	}
	return nil
}
