package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// TestNodeExternalIP: a server's node started with --node-external-ip
// shows the address as its ExternalIP (kubectl's EXTERNAL-IP column), keeps
// it across the kubelet's status updates, and servicelb gives it to a
// LoadBalancer Service as its ingress. The node runs in a network namespace
// whose eth0 also holds the external address, so nothing on the host
// changes.
func TestNodeExternalIP(t *testing.T) {
	testenv.LockNodes(t)
	tn := newTestNet(t)
	ns, nodeIP := tn.addNamespace(1)
	externalIP := tn.prefix + "101"
	tn.ip("-n", ns, "addr", "add", externalIP+"/32", "dev", "eth0")
	n := newNetNode(t, "server", ns, nodeIP)
	kubeconfig := filepath.Join(n.Dir, "kubeconfig.yaml")
	kubectl := func(args ...string) (string, error) {
		return n.exec(append([]string{n.bin, "kubectl", "--kubeconfig", kubeconfig}, args...)...)
	}
	start := time.Now()
	n.Start("server", "--config", n.emptyCfg, "--data-dir", n.DataDir, "--run-dir", n.RunDir,
		"--write-kubeconfig", kubeconfig, "--node-name", "kbxt-server", "--node-ip", nodeIP, "--advertise-address", nodeIP,
		"--node-external-ip", externalIP, "--flannel-iface", "eth0", "--resolv-conf", n.resolv,
		"--disable", "coredns,metrics-server,local-storage")
	waitFor(t, "the node Ready", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		return err == nil && strings.Contains(out, "kbxt-server=True"), out
	})
	t.Logf("node Ready %.1fs after start", time.Since(start).Seconds())
	waitFor(t, "the node initialized with its addresses", time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "node", "kbxt-server", "-o", `jsonpath={.spec.taints[*].key} {.status.addresses[?(@.type=="ExternalIP")].address}`)
		return strings.TrimSpace(out) == externalIP, out
	})
	t.Logf("node schedulable with its ExternalIP %.1fs after start", time.Since(start).Seconds())

	wideColumns := func() []string {
		out, err := kubectl("get", "node", "kbxt-server", "-o", "wide", "--no-headers")
		if err != nil {
			t.Fatalf("kubectl get node -o wide: %v\n%s", err, out)
		}
		return strings.Fields(out)
	}
	// NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP ...
	if f := wideColumns(); len(f) < 7 || f[5] != nodeIP || f[6] != externalIP {
		t.Errorf("kubectl get node -o wide: %v; want INTERNAL-IP %s, EXTERNAL-IP %s", f, nodeIP, externalIP)
	}
	if out, _ := kubectl("get", "node", "kbxt-server", "-o", "jsonpath={.spec.providerID}"); out != "kubox://kbxt-server" {
		t.Errorf("providerID %q, want kubox://kbxt-server", out)
	}

	lb := filepath.Join(n.Dir, "lb.yaml")
	os.WriteFile(lb, []byte(`apiVersion: v1
kind: Service
metadata: {name: ext-lb, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: none}
  ports: [{port: 8089}]
`), 0o644)
	if out, err := kubectl("apply", "-f", lb); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	waitFor(t, "ext-lb to get the external IP as its ingress", 2*time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "svc", "ext-lb", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		return strings.TrimSpace(out) == externalIP, out
	})

	// The kubelet reports its status every ten seconds: the address stays.
	time.Sleep(15 * time.Second)
	if f := wideColumns(); len(f) < 7 || f[6] != externalIP {
		t.Errorf("after the kubelet's status updates, kubectl get node -o wide: %v; want EXTERNAL-IP %s", f, externalIP)
	}
}
