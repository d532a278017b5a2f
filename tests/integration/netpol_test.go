package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// netpolObjects: a web server and a client in np-app, and in np-other a
// pod with the client's label that also serves, so it is a second client
// and an egress target.
var netpolObjects = `apiVersion: v1
kind: Namespace
metadata: {name: np-app}
---
apiVersion: v1
kind: Namespace
metadata: {name: np-other, labels: {team: other}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: np-app}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
` + echoPod("np-app", "web", "app: web", true) + echoPod("np-app", "client", "role: client", false) +
	echoPod("np-other", "other", "role: client", true)

// echoPod is a pod of the echo image that serves HTTP on 8080 (ready once
// it does), or sleeps.
func echoPod(ns, name, labels string, serve bool) string {
	args, probe := "[sleep]", ""
	if serve {
		args = `[serve, --port, "8080"]`
		probe = "\n    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 2}"
	}
	return fmt.Sprintf(`---
apiVersion: v1
kind: Pod
metadata: {name: %[2]s, namespace: %[1]s, labels: {%[3]s}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: %[2]s
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: %[4]s
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]%[5]s
`, ns, name, labels, args, probe)
}

const denyIngress = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: np-app}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`

const allowClients = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-clients, namespace: np-app}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
    ports: [{port: 8080}]
`

const allowTeamOther = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-team-other, namespace: np-app}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: other}}}]
`

const clientEgress = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-to-web-only, namespace: np-app}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 8080}]
`

// TestNetworkPolicy: a node enforces NetworkPolicies as the API defines
// them, by pod IP and by Service IP, and drops nothing once they are gone;
// with --disable-network-policy it enforces none, and takes away the rules
// and ipsets an earlier run left.
func TestNetworkPolicy(t *testing.T) {
	testenv.LockNodes(t)
	images := testImages(t)
	s := startNode(t)
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	f := filepath.Join(t.TempDir(), "np.yaml")
	os.WriteFile(f, []byte(netpolObjects), 0o644)
	s.MustKubectl("apply", "-f", f)
	t.Cleanup(func() { s.Kubectl("delete", "namespace", "np-app", "np-other", "--wait=false") })
	for _, ns := range []string{"np-app", "np-other"} {
		if out, err := s.Kubectl("wait", "-n", ns, "--for=condition=Ready", "pod", "--all", "--timeout=120s"); err != nil {
			t.Fatalf("pods in %s not Ready: %v\n%s\n%s", ns, err, out, s.MustKubectl("get", "pods", "-A", "-o", "wide"))
		}
	}
	podIP := func(ns, name string) string {
		return strings.TrimSpace(s.MustKubectl("get", "pod", "-n", ns, name, "-o", "jsonpath={.status.podIP}"))
	}
	web := "http://" + podIP("np-app", "web") + ":8080/"
	webSvc := "http://" + strings.TrimSpace(s.MustKubectl("get", "svc", "-n", "np-app", "web", "-o", "jsonpath={.spec.clusterIP}")) + "/"
	other := "http://" + podIP("np-other", "other") + ":8080/"

	type probe struct{ ns, from, url, want string }
	client := func(url, want string) probe { return probe{"np-app", "client", url, want} }
	fromOther := func(url, want string) probe { return probe{"np-other", "other", url, want} }
	// expect waits until every probe gives its answer (a body prefix, or
	// "" for no answer): policies take effect a moment after the API has
	// them. A refusal must be seen twice in a row, so that one lost
	// packet does not pass for it.
	expect := func(step string, probes ...probe) {
		t.Helper()
		for _, p := range probes {
			misses := 0
			waitFor(t, fmt.Sprintf("%s: %s/%s GET %s answering %q", step, p.ns, p.from, p.url, p.want), 45*time.Second, func() (bool, string) {
				out, err := s.Kubectl("exec", "-n", p.ns, p.from, "--", "/echo", "get", p.url, "--timeout", "2s")
				if p.want == "" {
					if err != nil {
						misses++
					} else {
						misses = 0
					}
					return misses >= 2, out
				}
				return err == nil && strings.HasPrefix(out, p.want), out
			})
		}
		rules, sets := netpolState(t)
		t.Logf("%s: %d rules in kube-router's chains, %d ipsets", step, rules, sets)
	}
	apply := func(manifest string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "policy.yaml")
		os.WriteFile(f, []byte(manifest), 0o644)
		s.MustKubectl("apply", "-f", f)
	}

	expect("no policy", client(web, "pod=web"), client(webSvc, "pod=web"), fromOther(web, "pod=web"), client(other, "pod=other"))

	apply(denyIngress)
	expect("default-deny ingress", client(web, ""), client(webSvc, ""), fromOther(web, ""))
	// The kubelet's probes still reach the pod.
	if out := s.MustKubectl("get", "pod", "-n", "np-app", "web", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
		t.Errorf("web is not Ready under default-deny: %q", out)
	}

	// A pod selector picks pods of the policy's own namespace only.
	apply(allowClients)
	expect("allow role=client", client(web, "pod=web"), client(webSvc, "pod=web"), fromOther(web, ""))

	apply(allowTeamOther)
	expect("allow namespaces team=other", fromOther(web, "pod=web"), client(web, "pod=web"))

	apply(clientEgress)
	expect("client egress to web only", client(web, "pod=web"), client(webSvc, "pod=web"), client(other, ""))

	s.MustKubectl("delete", "networkpolicy", "-n", "np-app", "--all")
	expect("policies deleted", client(web, "pod=web"), client(webSvc, "pod=web"), fromOther(web, "pod=web"), client(other, "pod=other"))

	// Restarted with --disable-network-policy, the node enforces nothing:
	// the rules of the run before go too (pods keep running across the
	// restart, and so would those rules).
	apply(denyIngress)
	expect("default-deny again", client(web, ""))
	s.Stop()
	s.Args = append(s.Args, "--disable-network-policy")
	s.StartReady()
	waitNodeReady(t, s)
	expect("network policy disabled", client(web, "pod=web"), client(webSvc, "pod=web"), fromOther(web, "pod=web"))
	if n, sets := netpolState(t); n != 0 || sets != 0 {
		t.Errorf("with --disable-network-policy: %d rules in kube-router's chains and %d of its ipsets left", n, sets)
	}

	if out, err := s.Killall(); err != nil {
		t.Fatalf("kubox killall: %v\n%s", err, out)
	}
	checkClean(t, s)
}

// netpolState counts the rules in the filter table's chains network policy
// owns, and its ipsets.
func netpolState(t *testing.T) (rules, sets int) {
	t.Helper()
	out, err := run("iptables-save", []string{"-t", "filter"}, nil)
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, chain := range []string{"-A KUBE-ROUTER-", "-A KUBE-NWPLCY-", "-A KUBE-POD-FW-"} {
			if strings.HasPrefix(line, chain) {
				rules++
				break
			}
		}
	}
	out, err = run("ipset", []string{"list", "-n"}, nil)
	if err != nil {
		t.Fatalf("ipset list: %v\n%s", err, out)
	}
	for _, name := range strings.Fields(out) {
		if strings.HasPrefix(name, "KUBE-SRC-") || strings.HasPrefix(name, "KUBE-DST-") {
			sets++
		}
	}
	return rules, sets
}
