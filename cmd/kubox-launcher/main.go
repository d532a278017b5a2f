// Command kubox-launcher is the front of a released kubox file: it unpacks
// the kubox binary packed behind it into the data dir, once per version,
// and replaces itself with it, keeping the command line and the name it was
// called by (kubectl, ctr, …). See pkg/sfx.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/sfx"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kubox: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer self.Close()
	p, err := sfx.Find(self)
	if errors.Is(err, sfx.ErrNoPayload) {
		return fmt.Errorf("this launcher carries no kubox: use a file made by `make release`")
	}
	if err != nil {
		return err
	}
	dir := unpackDir(os.Args[1:])
	path := filepath.Join(dir, "kubox-"+p.ID(), "kubox")
	if _, err := os.Stat(path); err != nil {
		if err := sfx.Extract(self, p, path); errors.Is(err, sfx.ErrDamaged) {
			return err
		} else if err != nil {
			return fmt.Errorf("cannot unpack into %s: %v; free disk space there or choose another --data-dir", filepath.Dir(path), unwrap(err))
		}
		sfx.Prune(dir, "kubox-"+p.ID())
	}
	self.Close()
	return syscall.Exec(path, os.Args, os.Environ())
}

// unpackDir is <data-dir>/data for the data dir the command line (or
// KUBOX_DATA_DIR) names, the default one for root, and ~/.kubox/data for other users (a user running
// the kubectl link cannot write root's data dir).
func unpackDir(args []string) string {
	dir, ok := paths.DataDirArg(args)
	if !ok {
		dir, ok = os.LookupEnv("KUBOX_DATA_DIR")
	}
	if !ok || dir == "" {
		dir = config.DefaultDataDir
		if os.Geteuid() != 0 {
			if home, err := os.UserHomeDir(); err == nil {
				dir = filepath.Join(home, ".kubox")
			}
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return filepath.Join(abs, "data")
}

// unwrap drops the *PathError wrapping, whose path the message already names.
func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
