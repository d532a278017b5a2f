package killall

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoveCNIResults(t *testing.T) {
	sandboxes, results := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(sandboxes, "aaa111"), 0o755)
	for _, name := range []string{"kubox-aaa111-eth0", "cni-loopback-aaa111-lo", "kubox-bbb222-eth0", "other-aaa1110-eth0"} {
		os.WriteFile(filepath.Join(results, name), nil, 0o600)
	}
	if n := removeCNIResults(sandboxes, results); n != 2 {
		t.Errorf("removed %d, want 2", n)
	}
	left, _ := os.ReadDir(results)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "kubox-bbb222-eth0 other-aaa1110-eth0" {
		t.Errorf("left: %v", names)
	}
}

// TestOurIPSets: only network policy's sets go, IPv6 ones included.
func TestOurIPSets(t *testing.T) {
	got := ourIPSets("KUBE-SRC-ABC\nKUBE-CLUSTER-IP\ninet6:KUBE-DST-XYZ\nmyset\nKUBE-DST-Q\n")
	if strings.Join(got, " ") != "KUBE-SRC-ABC inet6:KUBE-DST-XYZ KUBE-DST-Q" {
		t.Errorf("ours: %v", got)
	}
}
