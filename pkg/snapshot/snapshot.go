// Package snapshot saves, lists, prunes and restores copies of the cluster
// state: an online, consistent copy of the SQLite database (VACUUM INTO)
// or an etcd snapshot, each with a metadata file that lets a restore check
// it before anything is replaced.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/atomicfile"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/version"
)

// metaSuffix names the metadata file beside each snapshot.
const metaSuffix = ".json"

// Meta describes one snapshot; it is stored as <file>.json.
type Meta struct {
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	Kubox     string    `json:"kuboxVersion"`
	Datastore string    `json:"datastore"`
	Created   time.Time `json:"created"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	// Path is where the snapshot file is, "" for one only in S3; not
	// stored.
	Path string `json:"-"`
	// Location is file://<path> or s3://<bucket>/<folder>/<name>.
	Location string `json:"-"`
}

// Store is a node's snapshot directory and the datastore it copies.
type Store struct {
	Dir       string
	Node      string
	Datastore config.Datastore
	Paths     paths.Paths
	// S3, when set, receives a copy of each snapshot; List, Delete and
	// Prune cover it too.
	S3  *config.S3
	Now func() time.Time
}

func (s Store) remote() (*remote, error) {
	if s.S3 == nil {
		return nil, nil
	}
	return newRemote(s.S3)
}

func (s Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Save takes a snapshot named <name>-<node>-<unix seconds> while the
// datastore serves, and writes its metadata once the file is complete.
func (s Store) Save(ctx context.Context, name string) (Meta, error) {
	if err := config.CheckSnapshotName(name); err != nil {
		return Meta{}, err
	}
	if kind := s.Datastore.Kind(); kind != "sqlite" && kind != "etcd" {
		return Meta{}, fmt.Errorf("kubox snapshots SQLite and etcd; back up a %s datastore with the database's own tools", kind)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Meta{}, fmt.Errorf("cannot create the snapshot directory: %w; choose a writable --snapshot-dir", err)
	}
	created := s.now().UTC()
	base := fmt.Sprintf("%s-%s-%d", name, s.Node, created.Unix())
	final := filepath.Join(s.Dir, base)
	if _, err := os.Stat(final); err == nil {
		return Meta{}, fmt.Errorf("snapshot %s already exists; wait a second or choose another --name", base)
	}
	tmp := filepath.Join(s.Dir, "."+base+".part")
	os.Remove(tmp)
	var err error
	switch s.Datastore.Kind() {
	case "sqlite":
		err = saveSQLite(ctx, s.Datastore.SQLiteFile(s.Paths), tmp)
	case "etcd":
		err = saveEtcd(ctx, s.Datastore, tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return Meta{}, err
	}
	size, sum, err := digest(tmp)
	if err != nil {
		os.Remove(tmp)
		return Meta{}, err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return Meta{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return Meta{}, err
	}
	m := Meta{Name: base, Node: s.Node, Kubox: version.Version, Datastore: s.Datastore.Kind(),
		Created: created, Size: size, SHA256: sum, Path: final}
	data, _ := json.MarshalIndent(m, "", "  ")
	if err := atomicfile.Write(final+metaSuffix, append(data, '\n'), 0o600); err != nil {
		os.Remove(final)
		return Meta{}, err
	}
	m.Location = "file://" + final
	r, err := s.remote()
	if err == nil && r != nil {
		err = r.upload(ctx, m)
	}
	if err != nil {
		return m, fmt.Errorf("snapshot %s is saved in %s but not in S3: %w", base, s.Dir, err)
	}
	return m, nil
}

// List returns the snapshots in the directory, then those in S3, each
// oldest first. A file without metadata is listed with what its name and
// size say.
func (s Store) List(ctx context.Context) ([]Meta, error) {
	local, err := s.listLocal()
	if err != nil {
		return nil, err
	}
	_, remote, err := s.listRemote(ctx)
	if err != nil {
		return nil, err
	}
	return append(local, remote...), nil
}

// listRemote lists S3's snapshots, oldest first; nil, nil without S3.
func (s Store) listRemote(ctx context.Context) (*remote, []Meta, error) {
	r, err := s.remote()
	if err != nil || r == nil {
		return nil, nil, err
	}
	ms, err := r.list(ctx)
	if err != nil {
		return nil, nil, err
	}
	sortMetas(ms)
	return r, ms, nil
}

func (s Store) listLocal() ([]Meta, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the snapshot directory: %w", err)
	}
	var out []Meta
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, metaSuffix) {
			continue
		}
		m, err := ReadMeta(filepath.Join(s.Dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sortMetas(out)
	return out, nil
}

func sortMetas(ms []Meta) {
	sort.Slice(ms, func(i, j int) bool {
		if !ms[i].Created.Equal(ms[j].Created) {
			return ms[i].Created.Before(ms[j].Created)
		}
		return ms[i].Name < ms[j].Name
	})
}

// ReadMeta reads the metadata of the snapshot file at path; without a
// metadata file, Meta has the name, size and modification time only.
func ReadMeta(path string) (Meta, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Meta{}, fmt.Errorf("cannot read snapshot %s: %w", path, err)
	}
	m := Meta{Name: filepath.Base(path), Size: fi.Size(), Created: fi.ModTime().UTC(), Path: path, Location: "file://" + path}
	data, err := os.ReadFile(path + metaSuffix)
	if errors.Is(err, os.ErrNotExist) {
		if ts, ok := nameTime(m.Name); ok {
			m.Created = ts
		}
		return m, nil
	}
	if err != nil {
		return Meta{}, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Meta{}, fmt.Errorf("the metadata of snapshot %s is not valid JSON (%v); move %s aside to use the file without it", path, err, path+metaSuffix)
	}
	m.Path, m.Location = path, "file://"+path
	return m, nil
}

// nameTime reads the unix time that ends a snapshot's name.
func nameTime(name string) (time.Time, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}

// Delete removes the named snapshots and their metadata, from the
// directory and from S3.
func (s Store) Delete(ctx context.Context, names ...string) error {
	r, err := s.remote()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := checkName(n); err != nil {
			return err
		}
		found, err := s.deleteLocal(n)
		if err != nil {
			return err
		}
		if r != nil {
			inS3, err := r.delete(ctx, n)
			if err != nil {
				return err
			}
			found = found || inS3
		}
		if !found {
			return fmt.Errorf("no snapshot %s in %s; see 'kubox snapshot ls'", n, s.Dir)
		}
	}
	return nil
}

func checkName(n string) error {
	if n != filepath.Base(n) || strings.HasPrefix(n, ".") || strings.HasSuffix(n, metaSuffix) {
		return fmt.Errorf("invalid snapshot name %q: give a name as 'kubox snapshot ls' shows it", n)
	}
	return nil
}

func (s Store) deleteLocal(n string) (bool, error) {
	path := filepath.Join(s.Dir, n)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if err := os.Remove(path + metaSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, err
	}
	return true, nil
}

// Fetch returns a local path for a snapshot given as a path or as a name
// that 'ls' shows: one only in S3 is downloaded into the directory first.
func (s Store) Fetch(ctx context.Context, arg string) (string, error) {
	if strings.Contains(arg, "/") {
		return arg, nil
	}
	local := filepath.Join(s.Dir, arg)
	if _, err := os.Stat(local); err == nil || s.S3 == nil {
		return local, nil
	}
	if err := checkName(arg); err != nil {
		return "", err
	}
	r, err := s.remote()
	if err != nil {
		return "", err
	}
	return r.download(ctx, arg, s.Dir)
}

// Prune deletes this node's snapshots whose name starts with prefix,
// keeping the newest keep of them in the directory and in S3 each; it
// returns the locations deleted.
func (s Store) Prune(ctx context.Context, prefix string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("invalid retention %d: keep at least 1 snapshot", keep)
	}
	local, err := s.listLocal()
	if err != nil {
		return nil, err
	}
	deleted, err := s.prune(local, prefix, keep, func(m Meta) error {
		_, err := s.deleteLocal(m.Name)
		return err
	})
	if err != nil {
		return deleted, err
	}
	r, remote, err := s.listRemote(ctx)
	if err != nil || r == nil {
		return deleted, err
	}
	more, err := s.prune(remote, prefix, keep, func(m Meta) error {
		_, err := r.delete(ctx, m.Name)
		return err
	})
	return append(deleted, more...), err
}

func (s Store) prune(all []Meta, prefix string, keep int, del func(Meta) error) ([]string, error) {
	var mine []Meta
	for _, m := range all {
		if strings.HasPrefix(m.Name, prefix+"-"+s.Node+"-") {
			mine = append(mine, m)
		}
	}
	var deleted []string
	for len(mine) > keep {
		if err := del(mine[0]); err != nil {
			return deleted, err
		}
		deleted = append(deleted, mine[0].Location)
		mine = mine[1:]
	}
	return deleted, nil
}

// Verify checks a snapshot file against its metadata: size and sha256.
// A file without metadata passes; the restore checks its content.
func Verify(path string) (Meta, error) {
	m, err := ReadMeta(path)
	if err != nil {
		return m, err
	}
	if m.SHA256 == "" {
		return m, nil
	}
	size, sum, err := digest(path)
	if err != nil {
		return m, err
	}
	if size != m.Size || sum != m.SHA256 {
		return m, fmt.Errorf("snapshot %s is corrupt or truncated: %d bytes with sha256 %.12s…, its metadata says %d bytes with %.12s…; choose another snapshot", path, size, sum, m.Size, m.SHA256)
	}
	return m, nil
}

func digest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// syncFile makes path durable before it is renamed into place.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
