package snapshot

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// EtcdMember is the embedded etcd member a snapshot is restored into.
type EtcdMember struct {
	Name    string
	DataDir string // <data-dir>/server/db/etcd
	PeerURL string
}

// etcdRevisionBump lifts the restored member's revisions past any the
// replaced one handed out, and every older revision counts as compacted:
// a client still watching from before the restore lists afresh.
const etcdRevisionBump = 1 << 30

// RestoreEtcd replaces the embedded etcd member's data with the snapshot at
// path, as a one-member cluster. The caller holds the server lock: no
// member runs on it. The snapshot is checked (metadata hash, etcd's own
// hash) before anything is touched; the data it replaces is moved to
// pre-restore-<time>/ beside it.
func RestoreEtcd(path string, m EtcdMember, now time.Time) (Restored, error) {
	meta, err := Verify(path)
	if err != nil {
		return Restored{}, err
	}
	if meta.Datastore != "" && meta.Datastore != "etcd" {
		return Restored{}, fmt.Errorf("snapshot %s is of a %s datastore; this server's is etcd", path, meta.Datastore)
	}
	dbDir := filepath.Dir(m.DataDir)
	tmp := m.DataDir + ".restore"
	if err := os.RemoveAll(tmp); err != nil {
		return Restored{}, err
	}
	err = etcdutl.NewV3(zap.NewNop()).Restore(etcdutl.RestoreConfig{
		SnapshotPath:        path,
		Name:                m.Name,
		OutputDataDir:       tmp,
		PeerURLs:            []string{m.PeerURL},
		InitialCluster:      m.Name + "=" + m.PeerURL,
		InitialClusterToken: "kubox",
		RevisionBump:        etcdRevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		os.RemoveAll(tmp)
		return Restored{}, fmt.Errorf("cannot restore %s: %v; nothing was changed", path, err)
	}
	r := Restored{From: path, SHA256: meta.SHA256, At: now.UTC()}
	if r.SHA256 == "" {
		_, r.SHA256, _ = digest(path)
	}
	if _, err := os.Stat(m.DataDir); err == nil {
		r.PreRestore = filepath.Join(dbDir, fmt.Sprintf("pre-restore-%d", now.Unix()))
		if err := os.MkdirAll(r.PreRestore, 0o700); err != nil {
			os.RemoveAll(tmp)
			return Restored{}, fmt.Errorf("cannot keep the current member's data: %w; nothing was changed", err)
		}
		if err := os.Rename(m.DataDir, filepath.Join(r.PreRestore, filepath.Base(m.DataDir))); err != nil {
			os.RemoveAll(tmp)
			return Restored{}, fmt.Errorf("cannot move the current member's data to %s: %w; nothing was changed", r.PreRestore, err)
		}
	}
	if err := os.Rename(tmp, m.DataDir); err != nil {
		return Restored{}, fmt.Errorf("cannot put the restored member in place: %w; the previous data is in %s", err, r.PreRestore)
	}
	if err := syncDir(dbDir); err != nil {
		return Restored{}, err
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	return r, atomicfile.Write(markerPath(m.DataDir), append(data, '\n'), 0o600)
}
