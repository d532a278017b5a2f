package integration

import (
	"strings"
	"testing"
)

// TestCheckConfig: `kubox check-config` lists every requirement with its
// state and, for what is missing, the command that fixes it; on a host set
// up by scripts/install-deps.sh nothing fatal is missing.
func TestCheckConfig(t *testing.T) {
	out, err := run(kuboxBin(t), []string{"check-config"}, nil)
	if err != nil {
		t.Fatalf("kubox check-config failed on a prepared host: %v\n%s", err, out)
	}
	for _, want := range []string{"iptables on PATH", "overlay filesystem", "bridge netfilter", "memory cgroup controller", "running as root"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "ok ") && strings.Contains(line, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("check-config does not report %q as ok:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "MISS") && !strings.Contains(line, "fix: ") {
			t.Errorf("a missing requirement without a fix: %s", line)
		}
	}
}
