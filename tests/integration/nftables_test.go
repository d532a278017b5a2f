package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNftablesProxy: kube-proxy's nftables mode, chosen with
// --kube-proxy-arg, serves a ClusterIP, and killall removes its table.
func TestNftablesProxy(t *testing.T) {
	images := testImages(t)
	s := startNode(t, "--kube-proxy-arg", "proxy-mode=nftables")
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	f := filepath.Join(t.TempDir(), "echo.yaml")
	os.WriteFile(f, []byte(strings.Replace(echoDeployment, "replicas: 3", "replicas: 1", 1)), 0o644)
	s.MustKubectl("apply", "-f", f)
	if out, err := s.Kubectl("rollout", "status", "deployment/echo", "--timeout=180s"); err != nil {
		t.Fatalf("deployment not available: %v\n%s", err, out)
	}
	if out, _ := run("nft", []string{"list", "table", "ip", "kube-proxy"}, nil); !strings.Contains(out, "chain") {
		t.Fatalf("no nftables table kube-proxy; is kube-proxy in nftables mode?\n%s", out)
	}
	ip := strings.TrimSpace(s.MustKubectl("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"))
	if body := httpGetRetry(t, fmt.Sprintf("http://%s/", ip)); !strings.HasPrefix(body, "pod=echo-") {
		t.Errorf("ClusterIP in nftables mode answered %q", body)
	}
	if out, err := s.Killall(); err != nil {
		t.Fatalf("killall: %v\n%s", err, out)
	}
	if _, err := run("nft", []string{"list", "table", "ip", "kube-proxy"}, nil); err == nil {
		t.Errorf("nftables table kube-proxy left after killall")
	}
}
