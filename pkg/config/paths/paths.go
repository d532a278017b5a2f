// Package paths derives every file and directory kubox uses from the data
// dir, the config dir and the run dir, once, so that no other package builds
// paths of its own and two instances with different roots never collide.
package paths

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
)

// Paths holds the derived locations. Build it with New; never change it.
type Paths struct {
	DataDir   string // --data-dir, e.g. /var/lib/kubox
	ConfigDir string // e.g. /etc/kubox

	ServerDir   string // <data-dir>/server
	DBDir       string // <data-dir>/server/db
	SQLiteFile  string // <data-dir>/server/db/state.db
	SnapshotDir string // <data-dir>/server/db/snapshots (default)
	ServerLock  string // <data-dir>/server/lock, held by a running server
	KineSocket  string // <data-dir>/server/kine.sock (etcd API of kine)
	TLSDir      string // <data-dir>/server/tls
	// EtcdDir is the embedded etcd member's data (--cluster-init);
	// EtcdTLSDir its CA and certificates.
	EtcdDir    string // <data-dir>/server/db/etcd
	EtcdTLSDir string // <data-dir>/server/tls/etcd
	// EtcdJoined records the server a member joined (--server): such a
	// member belongs to that cluster, so --cluster-init is refused on it.
	EtcdJoined string // <data-dir>/server/db/etcd-joined
	CredDir    string // <data-dir>/server/cred (component kubeconfigs)
	// AdminKubeconfig is the admin kubeconfig kubox's own clients use: it
	// names the certificate files, so a renewal reaches running clients.
	AdminKubeconfig string // <data-dir>/server/cred/admin.kubeconfig
	// EncryptionConfig holds the keys that encrypt Secrets at rest.
	EncryptionConfig string // <data-dir>/server/cred/encryption-config.yaml
	ConfDir          string // <data-dir>/server/conf (component configuration files)
	TokenFile        string // <data-dir>/server/token
	ManifestsDir     string // <data-dir>/server/manifests
	// HelmDir keeps Helm's repository cache and configuration for charts
	// fetched from repositories.
	HelmDir string // <data-dir>/server/helm
	// PodSecurityConfig is the PodSecurity admission configuration kubox
	// writes with --profile cis; AuditLog is that profile's audit log.
	PodSecurityConfig string // <data-dir>/server/conf/pod-security-admission.yaml
	AuditLog          string // <data-dir>/server/logs/audit.log

	AgentDir         string // <data-dir>/agent
	KubeletDir       string // <data-dir>/agent/kubelet (kubelet --root-dir)
	ContainerdRoot   string // <data-dir>/agent/containerd
	ContainerdConfig string // <data-dir>/agent/etc/containerd/config.toml
	RegistryDir      string // <data-dir>/agent/etc/containerd/certs.d
	CNIConfDir       string // <data-dir>/agent/etc/cni/net.d
	CrictlConfig     string // <data-dir>/agent/etc/crictl.yaml (kubox crictl's preset)
	ImagesDir        string // <data-dir>/agent/images (air-gap tarballs)
	AgentTLSDir      string // <data-dir>/agent/tls (node certificates)
	AgentConfDir     string // <data-dir>/agent/conf (kubelet, kube-proxy configuration)
	StorageDir       string // <data-dir>/storage (local-path volumes)

	RunDir            string // runtime state, e.g. /run/kubox
	ContainerdState   string // <run-dir>/containerd
	ContainerdSocket  string // <run-dir>/containerd/containerd.sock
	FlannelSubnetFile string // <run-dir>/flannel/subnet.env
	// CNIIPAMDir holds pod address reservations: runtime state, gone
	// with the pods on killall or reboot, never leaked into /var/lib/cni.
	CNIIPAMDir string // <run-dir>/cni/networks
}

// DefaultDataDir is --data-dir unless the user says otherwise.
const DefaultDataDir = "/var/lib/kubox"

// DefaultRunDir is the run dir of a kubox with the default data dir.
const DefaultRunDir = "/run/kubox"

// RunDirFor derives a run dir for dataDir: the default data dir gets
// /run/kubox; any other gets its own, so two instances never share sockets.
func RunDirFor(dataDir, defaultDataDir string) string {
	if filepath.Clean(dataDir) == filepath.Clean(defaultDataDir) {
		return DefaultRunDir
	}
	sum := sha256.Sum256([]byte(filepath.Clean(dataDir)))
	return DefaultRunDir + "-" + hex.EncodeToString(sum[:4])
}

// New derives every path from the data dir, the config dir and the run dir.
func New(dataDir, configDir, runDir string) Paths {
	server := filepath.Join(dataDir, "server")
	db := filepath.Join(server, "db")
	agent := filepath.Join(dataDir, "agent")
	return Paths{
		DataDir:          dataDir,
		ConfigDir:        configDir,
		ServerDir:        server,
		DBDir:            db,
		SQLiteFile:       filepath.Join(db, "state.db"),
		SnapshotDir:      filepath.Join(db, "snapshots"),
		ServerLock:       filepath.Join(server, "lock"),
		KineSocket:       filepath.Join(server, "kine.sock"),
		TLSDir:           filepath.Join(server, "tls"),
		EtcdDir:          filepath.Join(db, "etcd"),
		EtcdTLSDir:       filepath.Join(server, "tls", "etcd"),
		EtcdJoined:       filepath.Join(db, "etcd-joined"),
		CredDir:          filepath.Join(server, "cred"),
		AdminKubeconfig:  filepath.Join(server, "cred", "admin.kubeconfig"),
		EncryptionConfig: filepath.Join(server, "cred", "encryption-config.yaml"),
		ConfDir:          filepath.Join(server, "conf"),
		TokenFile:        filepath.Join(server, "token"),
		ManifestsDir:     filepath.Join(server, "manifests"),
		HelmDir:          filepath.Join(server, "helm"),
		AgentDir:         agent,

		PodSecurityConfig: filepath.Join(server, "conf", "pod-security-admission.yaml"),
		AuditLog:          filepath.Join(server, "logs", "audit.log"),

		KubeletDir:       filepath.Join(agent, "kubelet"),
		ContainerdRoot:   filepath.Join(agent, "containerd"),
		ContainerdConfig: filepath.Join(agent, "etc", "containerd", "config.toml"),
		RegistryDir:      filepath.Join(agent, "etc", "containerd", "certs.d"),
		CNIConfDir:       filepath.Join(agent, "etc", "cni", "net.d"),
		CrictlConfig:     filepath.Join(agent, "etc", "crictl.yaml"),
		ImagesDir:        filepath.Join(agent, "images"),
		AgentTLSDir:      filepath.Join(agent, "tls"),
		AgentConfDir:     filepath.Join(agent, "conf"),
		StorageDir:       filepath.Join(dataDir, "storage"),

		RunDir:            runDir,
		ContainerdState:   filepath.Join(runDir, "containerd"),
		ContainerdSocket:  filepath.Join(runDir, "containerd", "containerd.sock"),
		FlannelSubnetFile: filepath.Join(runDir, "flannel", "subnet.env"),
		CNIIPAMDir:        filepath.Join(runDir, "cni", "networks"),
	}
}

// DataDirArg finds the --data-dir (or -d) in the arguments of a kubox
// command that defines it, for code that must know it before the command
// line is parsed. It reads them as the parser does: one or two dashes,
// "=value" or the next argument, the last one wins, a bare -- ends the flags.
// It cannot tell which other flags take a value, so the value of one of
// those that looks like -d is misread; kubox's own command lines never have
// one.
func DataDirArg(args []string) (string, bool) {
	dir, found := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, inline := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		if name != "d" && name != "data-dir" {
			continue
		}
		if inline {
			dir, found = value, true
		} else if i+1 < len(args) {
			dir, found = args[i+1], true
			i++ // a value, even one like "--", is not a flag
		}
	}
	return dir, found
}

// CertDirs are the directories of the certificates kubox keeps: the
// server's, its embedded etcd member's and its node's.
func (p Paths) CertDirs() []string {
	return []string{p.TLSDir, p.EtcdTLSDir, p.AgentTLSDir}
}
