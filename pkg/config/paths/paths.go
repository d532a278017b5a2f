// Package paths derives every file and directory kubox uses from the data
// dir, the config dir and the run dir, once, so that no other package builds
// paths of its own and two instances with different roots never collide.
package paths

import "path/filepath"

// Paths holds the derived locations. Build it with New; never change it.
type Paths struct {
	DataDir   string // --data-dir, e.g. /var/lib/kubox
	ConfigDir string // e.g. /etc/kubox

	ServerDir    string // <data-dir>/server
	DBDir        string // <data-dir>/server/db
	SQLiteFile   string // <data-dir>/server/db/state.db
	KineSocket   string // <data-dir>/server/kine.sock (etcd API of kine)
	TLSDir       string // <data-dir>/server/tls
	CredDir      string // <data-dir>/server/cred (component kubeconfigs)
	ConfDir      string // <data-dir>/server/conf (component configuration files)
	TokenFile    string // <data-dir>/server/token
	ManifestsDir string // <data-dir>/server/manifests

	AgentDir string // <data-dir>/agent
}

// New derives every path from the data dir and the config dir.
func New(dataDir, configDir string) Paths {
	server := filepath.Join(dataDir, "server")
	db := filepath.Join(server, "db")
	return Paths{
		DataDir:      dataDir,
		ConfigDir:    configDir,
		ServerDir:    server,
		DBDir:        db,
		SQLiteFile:   filepath.Join(db, "state.db"),
		KineSocket:   filepath.Join(server, "kine.sock"),
		TLSDir:       filepath.Join(server, "tls"),
		CredDir:      filepath.Join(server, "cred"),
		ConfDir:      filepath.Join(server, "conf"),
		TokenFile:    filepath.Join(server, "token"),
		ManifestsDir: filepath.Join(server, "manifests"),
		AgentDir:     filepath.Join(dataDir, "agent"),
	}
}
