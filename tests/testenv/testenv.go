// Package testenv holds what kubox's test suites share about the machine
// they run on: the binary under test, free ports, and the host-wide lock
// that keeps two kubox nodes from running at once.
package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// holders are the top-level tests of this process that hold NodeLock: a
// test (or its subtests) that starts several nodes takes the lock once.
var holders sync.Map

// LockNodes holds NodeLock until the test ends: two kubox nodes on one
// host would fight over interfaces and ports. Calling it again in the same
// test, or in one of its subtests, is a no-op.
func LockNodes(t *testing.T) {
	t.Helper()
	root, _, _ := strings.Cut(t.Name(), "/")
	if _, held := holders.LoadOrStore(root, true); held {
		return
	}
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
	t.Cleanup(func() {
		f.Close()
		holders.Delete(root)
	})
}

// NetnsDir is where `ip netns add` pins network namespaces.
const NetnsDir = "/run/netns"

// UndoNetnsMount returns what restores NetnsDir after namespaces are
// added: the first `ip netns add` turns it into a mount point, and whoever
// caused that unmounts it again once no namespace is left in it.
func UndoNetnsMount() func() {
	if IsMountPoint(NetnsDir) {
		return func() {}
	}
	return func() {
		if entries, _ := os.ReadDir(NetnsDir); len(entries) == 0 && IsMountPoint(NetnsDir) {
			_ = syscall.Unmount(NetnsDir, syscall.MNT_DETACH)
		}
	}
}

// IsMountPoint tells whether dir is a mount point of this mount namespace.
func IsMountPoint(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
