// Package testenv holds what kubox's test suites share about the machine
// they run on: the binary under test, free ports, and the host-wide lock
// that keeps two kubox nodes from running at once.
package testenv

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// NodeLock serialises every kubox node on this host.
const NodeLock = "/tmp/kubox-node.lock"

// KuboxBin is the binary under test: $KUBOX_BIN, or bin/kubox of the
// repository (target names the make target that builds and runs it).
func KuboxBin(t *testing.T, target string) string {
	t.Helper()
	bin := os.Getenv("KUBOX_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/kubox")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubox binary not found at %s: run `make %s` (or set KUBOX_BIN)", bin, target)
	}
	return bin
}

// FreePort asks the kernel for a free TCP port.
func FreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// LockNodes holds NodeLock until the test ends: two kubox nodes on one
// host would fight over interfaces and ports.
func LockNodes(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(NodeLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Logf("waiting for %s: another kubox node runs on this host", NodeLock)
		start := time.Now()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		t.Logf("got %s after %s", NodeLock, time.Since(start).Round(time.Second))
	}
	t.Cleanup(func() { f.Close() })
}
