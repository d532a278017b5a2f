package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// ErrNoToken means the store holds a record but the server has no token
// to open it with.
var ErrNoToken = errors.New("the datastore holds a cluster's bootstrap record and this server has no token to open it")

// Sync reconciles the shared files under Dir with the store's record.
type Sync struct {
	Dir    string   // the directory Names are relative to
	Names  []string // the shared files
	Secret string   // the server token's secret; "" when there is none yet
	Store  Store
	// PreferStored settles a file that differs here and in the store for the
	// stored copy (files this server just made, while another server stored
	// its own first); otherwise the newer copy wins.
	PreferStored bool
}

// Result says what Run did.
type Result struct {
	Found   bool     // the store held a record
	Written []string // files replaced or created from the store's copy
	Stored  []string // files the store took from here
}

// attempts bounds the retries when other servers update the record at the
// same time.
const attempts = 5

// Run reads the record, writes the files that are missing or older here,
// and stores those that are missing or older in the record.
func (s Sync) Run(ctx context.Context) (Result, error) {
	for range attempts {
		r, done, err := s.once(ctx)
		if err != nil || done {
			return r, err
		}
	}
	return Result{}, errors.New("the bootstrap record kept changing while this server stored its files: start it again")
}

func (s Sync) once(ctx context.Context) (Result, bool, error) {
	var r Result
	data, rev, err := s.Store.Get(ctx)
	if err != nil {
		return r, false, err
	}
	stored := map[string]File{}
	if rev != 0 {
		r.Found = true
		if s.Secret == "" {
			return r, false, ErrNoToken
		}
		if stored, err = Open(s.Secret, data); err != nil {
			return r, false, err
		}
	}
	local, err := s.readLocal()
	if err != nil {
		return r, false, err
	}
	write, next, changed := merge(local, stored, s.PreferStored)
	for _, name := range sortedNames(write) {
		if !slices.Contains(s.Names, name) {
			continue // a file a newer kubox shares; kept in the record
		}
		if err := s.writeLocal(name, write[name]); err != nil {
			return r, false, err
		}
		r.Written = append(r.Written, name)
	}
	if !changed || s.Secret == "" {
		return r, true, nil
	}
	sealed, err := Seal(s.Secret, next)
	if err != nil {
		return r, false, err
	}
	ok, err := s.Store.Put(ctx, sealed, rev)
	if err != nil || !ok {
		return r, false, err
	}
	for _, name := range sortedNames(next) {
		if f, ok := stored[name]; !ok || !bytes.Equal(f.Content, next[name].Content) {
			r.Stored = append(r.Stored, name)
		}
	}
	return r, true, nil
}

// merge decides, file by file, which copy stays: a file only on one side
// is taken by the other, and one that differs goes by PreferStored or
// the newer modification time. It returns the files to write here, the
// record's next content, and whether that differs from the stored one.
func merge(local, stored map[string]File, preferStored bool) (write, next map[string]File, changed bool) {
	write, next = map[string]File{}, map[string]File{}
	for name, f := range stored {
		next[name] = f
	}
	for name, l := range local {
		st, ok := stored[name]
		switch {
		case !ok:
			next[name], changed = l, true
		case bytes.Equal(l.Content, st.Content):
		case preferStored || !l.ModTime.After(st.ModTime):
			write[name] = st
		default:
			next[name], changed = l, true
		}
	}
	for name, st := range stored {
		if _, ok := local[name]; !ok {
			write[name] = st
		}
	}
	return write, next, changed
}

func (s Sync) readLocal() (map[string]File, error) {
	files := map[string]File{}
	for _, name := range s.Names {
		path := filepath.Join(s.Dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		files[name] = File{Content: data, ModTime: st.ModTime().UTC()}
	}
	return files, nil
}

// writeLocal writes a stored file with the stored modification time, so
// that the next Run sees the two copies as equally new.
func (s Sync) writeLocal(name string, f File) error {
	path := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(path, f.Content, 0o600); err != nil {
		return err
	}
	return os.Chtimes(path, f.ModTime, f.ModTime)
}

func sortedNames(m map[string]File) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
