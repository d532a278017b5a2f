package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const echoOne = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: kubox.test/echo:v1
        imagePullPolicy: Never
        args: [serve, --port, "8080"]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
`

// TestNftablesProxy: kube-proxy's nftables mode, chosen with
// --kube-proxy-arg, serves a ClusterIP, and killall removes its table.
func TestNftablesProxy(t *testing.T) {
	images := testImages(t)
	s := startNode(t, "--kube-proxy-arg", "proxy-mode=nftables")
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	f := filepath.Join(t.TempDir(), "echo.yaml")
	os.WriteFile(f, []byte(echoOne), 0o644)
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
