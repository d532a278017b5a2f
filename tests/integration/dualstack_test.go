package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// dualStackPods are an echo server behind a Service that must have a
// ClusterIP of each family, and a client pod to call it from.
const dualStackPods = `apiVersion: v1
kind: Pod
metadata: {name: ds-echo, namespace: default, labels: {app: ds-echo}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [serve, --port, "8080"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: ds-client, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [serve, --port, "8080"]
---
apiVersion: v1
kind: Service
metadata: {name: ds-echo, namespace: default}
spec:
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: ds-echo}
  ports: [{port: 80, targetPort: 8080}]
`

// TestDualStack: a server with an IPv4 and an IPv6 range for pods and
// Services, in a namespace whose interface has an address of each family.
// Without an IPv6 address the node refuses to start, in one line, having
// written nothing. With one, the node takes it as its second address
// unasked; a pod gets an address of each family, a RequireDualStack
// Service a ClusterIP of each, and another pod reaches the Service on both
// (and by its DNS name). A NetworkPolicy refuses other pods on both, lets
// the pods it names in on both, and refuses a pod again once its label,
// and so its place in the policy's sets, is gone.
func TestDualStack(t *testing.T) {
	images := testImages(t)
	testenv.LockNodes(t)
	tn := newTestNet(t)
	ns, ip4 := tn.addNamespace(1)
	srv := newNetNode(t, "server", ns, ip4)
	kubeconfig := filepath.Join(srv.Dir, "kubeconfig.yaml")
	args := []string{"server", "--config", srv.emptyCfg, "--data-dir", srv.DataDir, "--run-dir", srv.RunDir,
		"--write-kubeconfig", kubeconfig, "--node-name", "kbxt-ds", "--node-ip", ip4, "--advertise-address", ip4,
		"--resolv-conf", srv.resolv,
		"--cluster-cidr", "10.42.0.0/16,fd42::/56", "--service-cidr", "10.43.0.0/16,fd43::/112"}

	// The namespace has no IPv6 address yet.
	out, err := runIn(ns, srv.bin, time.Minute, args...)
	want := "kubox: the cluster is dual-stack but the node has no IPv6 address on the interface of " + ip4 + ": add a global or ULA one to it"
	if err == nil || !strings.HasPrefix(lastLine(out), want) {
		t.Errorf("a dual-stack node without IPv6: want a refusal starting %q, got %v:\n%s", want, err, out)
	}
	for _, p := range []string{srv.DataDir, srv.RunDir, kubeconfig} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the refused start created %s", p)
		}
	}

	ip6 := tn.addIPv6(1)
	srv.airGapImage(filepath.Join(images, "echo.tar"))
	start := time.Now()
	srv.Start(args...)
	kubectl := func(args ...string) (string, error) {
		return srv.exec(append([]string{srv.bin, "kubectl", "--kubeconfig", kubeconfig}, args...)...)
	}
	waitFor(t, "the node Ready", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "node", "kbxt-ds", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True", out
	})
	t.Logf("node Ready %.1fs after start", time.Since(start).Seconds())
	out, err = kubectl("get", "node", "kbxt-ds", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address} {.spec.podCIDRs}`)
	if err != nil || !strings.HasPrefix(out, ip4+" "+ip6+" ") || !strings.Contains(out, "10.42.") || !strings.Contains(out, "fd42:") {
		t.Errorf("node addresses and pod ranges: %v %s; want %s, %s and a range of each family", err, out, ip4, ip6)
	}
	// vxlan carries IPv6 on a device of its own.
	if out, err := srv.exec("ip", "-d", "link", "show", "flannel-v6.1"); err != nil || !strings.Contains(out, "vxlan") {
		t.Errorf("no IPv6 vxlan device: %v\n%s", err, out)
	}

	manifest := filepath.Join(srv.Dir, "dualstack.yaml")
	if err := os.WriteFile(manifest, []byte(dualStackPods), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl("apply", "-f", manifest); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	waitFor(t, "both pods Ready", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "pods", "ds-echo", "ds-client", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}`)
		return err == nil && out == "True True ", out
	})
	for _, pod := range []string{"ds-echo", "ds-client"} {
		ips := jsonIPs(t, kubectl, "pod", pod, "{.status.podIPs[*].ip}")
		if len(ips) != 2 || !inCIDR(ips[0], "10.42.0.0/16") || !inCIDR(ips[1], "fd42::/56") {
			t.Errorf("pod %s has addresses %v, want one of 10.42.0.0/16 then one of fd42::/56", pod, ips)
		}
	}
	clusterIPs := jsonIPs(t, kubectl, "service", "ds-echo", "{.spec.clusterIPs[*]}")
	if len(clusterIPs) != 2 || !inCIDR(clusterIPs[0], "10.43.0.0/16") || !inCIDR(clusterIPs[1], "fd43::/112") {
		t.Fatalf("service ClusterIPs %v, want one of 10.43.0.0/16 then one of fd43::/112", clusterIPs)
	}
	for _, url := range []string{
		"http://" + clusterIPs[0] + "/",
		"http://[" + clusterIPs[1] + "]/",
		"http://ds-echo.default.svc.cluster.local/",
	} {
		out, err := kubectl("exec", "ds-client", "--", "/echo", "get", url, "--retries", "10")
		if err != nil || !strings.Contains(out, "pod=ds-echo") {
			t.Errorf("GET %s from another pod: %v\n%s", url, err, out)
		}
	}

	// A policy letting in pods labelled role=client only refuses
	// ds-client, which has no label yet, on both families.
	policy := filepath.Join(srv.Dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(dualStackPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl("apply", "-f", policy); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	for _, ip := range clusterIPs {
		url := "http://" + net.JoinHostPort(ip, "80") + "/"
		waitFor(t, "the policy to refuse "+url, time.Minute, func() (bool, string) {
			out, err := kubectl("exec", "ds-client", "--", "/echo", "get", url, "--timeout", "2s")
			return err != nil, out
		})
	}
	if out, err := kubectl("label", "pod", "ds-client", "role=client"); err != nil {
		t.Fatalf("kubectl label: %v\n%s", err, out)
	}
	// Let in on both families: over IPv6 this needs kubox's ipset
	// handlers (kube-router v2.1.0's own name IPv6 sets apart from its
	// ip6tables rules, so the allow rule never landed).
	for _, ip := range clusterIPs {
		url := "http://" + net.JoinHostPort(ip, "80") + "/"
		if out, err := kubectl("exec", "ds-client", "--", "/echo", "get", url, "--timeout", "2s", "--retries", "20"); err != nil || !strings.Contains(out, "pod=ds-echo") {
			t.Errorf("GET %s from a pod the policy lets in: %v\n%s", url, err, out)
		}
	}
	// The label gone, the pod is refused again on both: the sets follow.
	if out, err := kubectl("label", "pod", "ds-client", "role-"); err != nil {
		t.Fatalf("kubectl label: %v\n%s", err, out)
	}
	for _, ip := range clusterIPs {
		url := "http://" + net.JoinHostPort(ip, "80") + "/"
		waitFor(t, "the policy to refuse "+url+" again", time.Minute, func() (bool, string) {
			out, err := kubectl("exec", "ds-client", "--", "/echo", "get", url, "--timeout", "2s")
			return err != nil, out
		})
	}
	t.Logf("dual-stack checks done %.1fs after start", time.Since(start).Seconds())
}

// dualStackPolicy lets only pods labelled role=client reach ds-echo.
const dualStackPolicy = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ds-from-clients, namespace: default}
spec:
  podSelector: {matchLabels: {app: ds-echo}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
`

// jsonIPs reads a space-separated list of addresses from an object.
func jsonIPs(t *testing.T, kubectl func(...string) (string, error), kind, name, path string) []string {
	t.Helper()
	out, err := kubectl("get", kind, name, "-o", "jsonpath="+path)
	if err != nil {
		t.Fatalf("kubectl get %s %s: %v\n%s", kind, name, err, out)
	}
	return strings.Fields(out)
}

func inCIDR(ip, cidr string) bool {
	_, n, err := net.ParseCIDR(cidr)
	return err == nil && n.Contains(net.ParseIP(ip))
}

// addIPv6 gives namespace i's eth0 the ULA fd99:199::<i> (and the bridge
// fd99:199::fe, once), with a default IPv6 route through the bridge, and
// returns the namespace's address. No duplicate address detection: the
// addresses are usable at once.
func (n *testNet) addIPv6(i int) string {
	n.t.Helper()
	if !n.v6 {
		n.ip("addr", "add", "fd99:199::fe/64", "dev", n.bridge, "nodad")
		n.v6 = true
	}
	ns, ip := fmt.Sprintf("kbxt-%d", i), fmt.Sprintf("fd99:199::%d", i)
	n.ip("-n", ns, "addr", "add", ip+"/64", "dev", "eth0", "nodad")
	n.ip("-n", ns, "-6", "route", "add", "default", "via", "fd99:199::fe")
	return ip
}
