// Command kubox-launcher is the front of a released kubox file: it unpacks
// the kubox binary packed behind it into the data dir, once per version,
// and replaces itself with it, keeping the command line and the name it was
// called by (kubectl, ctr, …). See pkg/sfx.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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
	dir := unpackDir(os.Args)
	path := filepath.Join(dir, "kubox-"+p.ID(), "kubox")
	// The checked file must stay as checked until exec: only this user or
	// root may write it and the two dirs above it. Above those is the data
	// dir, trusted as a whole (kubox keeps its keys there).
	for _, d := range []string{dir, filepath.Dir(path)} {
		if err := sfx.PrepareDir(d); errors.Is(err, sfx.ErrUnsafe) {
			return fmt.Errorf("%v; remove it, or choose another --data-dir (KUBOX_DATA_DIR)", err)
		} else if err != nil {
			return unpackError(d, err)
		}
	}
	if err := sfx.Check(path, p); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "kubox: %v: unpacking it again\n", err)
		}
		if err := sfx.Extract(self, p, path); errors.Is(err, sfx.ErrDamaged) {
			return err
		} else if err != nil {
			return unpackError(filepath.Dir(path), err)
		}
		sfx.Prune(dir, "kubox-"+p.ID())
	}
	self.Close()
	return syscall.Exec(path, os.Args, os.Environ())
}

// unpackError says why dir cannot take the program, and what to do.
func unpackError(dir string, err error) error {
	err = unwrap(err)
	fix := ""
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		fix = "free disk space there, or "
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		fix = "run this once as a user who can write there, or "
	}
	return fmt.Errorf("cannot unpack into %s: %v; %schoose another --data-dir (KUBOX_DATA_DIR)", dir, err, fix)
}

// unpackDir is <data-dir>/data for the data dir kubox's own flags (see
// dataDirArg) or KUBOX_DATA_DIR name, the default one for root, and
// ~/.kubox/data for other users (a user running the kubectl link cannot
// write root's data dir).
func unpackDir(argv []string) string {
	dir, ok := dataDirArg(argv)
	if !ok {
		dir, ok = os.LookupEnv("KUBOX_DATA_DIR")
	}
	if !ok || dir == "" {
		dir = paths.DefaultDataDir
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

// passThrough are the names kubox answers to as an embedded tool (see
// pkg/cli.Main): their arguments are the tool's, not kubox's.
var passThrough = map[string]bool{"kubectl": true, "ctr": true, "crictl": true, "containerd": true}

// dataDirCommands are the kubox subcommands with a --data-dir flag (see
// pkg/cli); no other one's arguments are read, so those of kubox kubectl,
// ctr, crictl and containerd never are.
var dataDirCommands = map[string]bool{"server": true, "agent": true, "killall": true}

// dataDirArg finds the data dir kubox's own flags name in argv (with
// argv[0]). Only kubox's count: the data dir picks the program that runs,
// and a -d among a tool's arguments (kubectl -d …, which a sudo rule may
// allow) must not. The subcommand is the first argument not starting with
// "-" (kubox's global flags take no value), before any bare "--".
func dataDirArg(argv []string) (string, bool) {
	if len(argv) == 0 || passThrough[filepath.Base(argv[0])] {
		return "", false
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		if dataDirCommands[a] {
			return paths.DataDirArg(argv[i+1:])
		}
		break
	}
	return "", false
}

// unwrap drops the *PathError wrapping, whose path the message already names.
func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
