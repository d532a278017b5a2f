// Package atomicfile replaces files whole: a reader, or a crash, sees the
// old file or the new one, never a torn write. Every file kubox writes for
// another component to read (keys, certificates, kubeconfigs, manifests,
// CNI and component configuration) goes through it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, mode mode (whatever the umask). The data
// is synced before the rename, and the rename itself afterwards.
func Write(path string, data []byte, mode os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// CreateTemp opens the file 0600, so secrets never sit in a wider mode,
	// even briefly.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Chmod on the descriptor is not subject to the umask.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	// Some filesystems refuse to sync a directory; the new file is
	// complete either way, so that is not an error.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
