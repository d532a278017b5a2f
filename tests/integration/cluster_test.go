package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

const spreadDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: spread, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, nodeTaintsPolicy: Honor, labelSelector: {matchLabels: {app: spread}}}
      # Leave a node that stops answering after 10 s, not 5 minutes.
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 10}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 10}
      containers:
      - name: echo
        image: kubox.test/echo:v1
        imagePullPolicy: Never
        args: [serve, --port, "8080"]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata: {name: spread, namespace: default}
spec:
  type: NodePort
  selector: {app: spread}
  ports: [{port: 80, targetPort: 8080, nodePort: 30090}]
`

// spreadPolicies deny ingress to the spread pods except from pods
// labelled role=client.
const spreadPolicies = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: spread-deny, namespace: default}
spec:
  podSelector: {matchLabels: {app: spread}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: spread-from-clients, namespace: default}
spec:
  podSelector: {matchLabels: {app: spread}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
`

// TestCluster: a server and an agent, each in its own network namespace,
// joined by token; pods on both nodes serve one Service, from either node.
// Tokens that do not fit, and a second machine claiming a node's name, are
// refused. A server restart leaves the agent's pods alone; an agent cut off
// goes NotReady, its pods move, and it comes back; a deleted node registers
// again when its agent restarts. NetworkPolicies hold between the nodes.
// (TestHA covers the host-gw backend and
// node certificates renewed while the agent runs.)
func TestCluster(t *testing.T) {
	images := testImages(t)
	testenv.LockNodes(t)
	net := newTestNet(t)
	sNS, sIP := net.addNamespace(1)
	aNS, aIP := net.addNamespace(2)
	xNS, _ := net.addNamespace(3) // for agents that must be refused

	srv := newNetNode(t, "server", sNS, sIP)
	ag := newNetNode(t, "agent", aNS, aIP)
	for _, n := range []*netNode{srv, ag} {
		n.airGapImage(filepath.Join(images, "echo.tar"))
	}
	kubeconfig := filepath.Join(srv.Dir, "kubeconfig.yaml")
	kubectl := func(args ...string) (string, error) {
		return srv.exec(append([]string{srv.bin, "kubectl", "--kubeconfig", kubeconfig}, args...)...)
	}
	mustKubectl := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	serverURL := "https://" + sIP + ":6443"
	start := time.Now()
	serverArgs := []string{"server", "--config", srv.emptyCfg, "--data-dir", srv.DataDir, "--run-dir", srv.RunDir,
		"--write-kubeconfig", kubeconfig, "--node-name", "kbxt-server", "--node-ip", sIP, "--advertise-address", sIP,
		"--flannel-iface", "eth0", "--resolv-conf", srv.resolv}
	srv.Start(serverArgs...)
	waitFor(t, "the server's node Ready", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		return err == nil && strings.Contains(out, "kbxt-server=True"), out
	})
	t.Logf("server node Ready %.1fs after start", time.Since(start).Seconds())
	tokenData, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenData))
	hash, secret, ok := strings.Cut(strings.TrimPrefix(token, "K1"), "::")
	if !strings.HasPrefix(token, "K1") || !ok || len(hash) != 64 {
		t.Fatalf("the token file holds %q, want K1<CA hash>::<secret>", token)
	}

	// Refusals, each one clear line and a non-zero exit, before the node
	// starts anything.
	refused := func(what, want string, args ...string) {
		t.Helper()
		dir := t.TempDir()
		out, err := runIn(xNS, srv.bin, time.Minute, append([]string{"agent", "--config", srv.emptyCfg, "--server", serverURL,
			"--data-dir", filepath.Join(dir, "data"), "--run-dir", filepath.Join(dir, "run")}, args...)...)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%s: want a refusal saying %q, got %v:\n%s", what, want, err, out)
		}
	}
	refused("a token pinning another CA", "does not match the token's hash",
		"--token", "K1"+strings.Repeat("0", 64)+"::"+secret, "--node-name", "kbxt-x")
	refused("a wrong secret", "token rejected",
		"--token", "K1"+hash+"::"+strings.Repeat("ab", 32), "--node-name", "kbxt-x")
	extra := strings.TrimSpace(mustKubectlToken(t, srv, kubeconfig, "create", "--ttl", "1h"))
	id := strings.SplitN(strings.SplitN(extra, "::", 2)[1], ".", 2)[0]
	if list := mustKubectlToken(t, srv, kubeconfig, "list"); !strings.Contains(list, id) {
		t.Errorf("kubox token list lacks %s:\n%s", id, list)
	}
	mustKubectlToken(t, srv, kubeconfig, "delete", id)
	refused("a deleted token", "token rejected", "--token", extra, "--node-name", "kbxt-x")

	// The agent joins with a token of its own, deleted once it has joined:
	// the node needs it no more.
	agentToken := strings.TrimSpace(mustKubectlToken(t, srv, kubeconfig, "create", "--ttl", "1h"))
	agentTokenID := strings.SplitN(strings.SplitN(agentToken, "::", 2)[1], ".", 2)[0]
	start = time.Now()
	agentArgs := []string{"agent", "--config", ag.emptyCfg, "--server", serverURL, "--token", agentToken, "--data-dir", ag.DataDir,
		"--run-dir", ag.RunDir, "--node-name", "kbxt-agent", "--node-ip", aIP, "--flannel-iface", "eth0", "--resolv-conf", ag.resolv}
	ag.Start(agentArgs...)
	waitFor(t, "both nodes Ready", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		return err == nil && strings.Contains(out, "kbxt-server=True") && strings.Contains(out, "kbxt-agent=True"), out
	})
	t.Logf("agent node Ready %.1fs after start", time.Since(start).Seconds())
	mustKubectlToken(t, srv, kubeconfig, "delete", agentTokenID)
	refused("a second machine with the agent's node name", "already registered", "--token", token, "--node-name", "kbxt-agent")

	manifest := filepath.Join(srv.Dir, "spread.yaml")
	os.WriteFile(manifest, []byte(spreadDeployment), 0o644)
	mustKubectl("apply", "-f", manifest)
	if out, err := kubectl("rollout", "status", "deployment/spread", "--timeout=180s"); err != nil {
		t.Fatalf("deployment not available: %v\n%s\n%s", err, out, mustKubectl("get", "pods", "-o", "wide"))
	}
	podNode := map[string]string{} // pod → node
	podIP := map[string]string{}
	for _, line := range strings.Fields(mustKubectl("get", "pods", "-l", "app=spread", "-o", `jsonpath={range .items[*]}{.metadata.name},{.spec.nodeName},{.status.podIP} {end}`)) {
		f := strings.Split(line, ",")
		podNode[f[0]], podIP[f[0]] = f[1], f[2]
	}
	onNode := func(node string) (pods []string) {
		for p, n := range podNode {
			if n == node {
				pods = append(pods, p)
			}
		}
		sort.Strings(pods)
		return pods
	}
	if len(onNode("kbxt-server")) == 0 || len(onNode("kbxt-agent")) == 0 {
		t.Fatalf("pods not spread over both nodes: %v", podNode)
	}

	// The ClusterIP, from each node, reaches pods on both nodes.
	clusterIP := strings.TrimSpace(mustKubectl("get", "svc", "spread", "-o", "jsonpath={.spec.clusterIP}"))
	for _, n := range []*netNode{srv, ag} {
		seen := map[string]bool{}
		var errs []string
		waitFor(t, "the ClusterIP from node "+n.name+" reaching pods on both nodes", 2*time.Minute, func() (bool, string) {
			out, err := n.exec("curl", "-sS", "--max-time", "3", "http://"+clusterIP+"/")
			if err != nil {
				errs = append(errs, strings.TrimSpace(out))
			} else {
				seen[podNode[strings.TrimPrefix(strings.Fields(out + " x")[0], "pod=")]] = true
			}
			return seen["kbxt-server"] && seen["kbxt-agent"], fmt.Sprintf("reached %v; failures %d, last %q", seen, len(errs), errs[max(0, len(errs)-1):])
		})
	}
	// Pod to pod across nodes, both ways.
	a, s := onNode("kbxt-agent")[0], onNode("kbxt-server")[0]
	for _, pair := range [][2]string{{a, s}, {s, a}} {
		out, err := kubectl("exec", pair[0], "--", "/echo", "get", "http://"+podIP[pair[1]]+":8080/", "--retries", "5")
		if err != nil || !strings.Contains(out, "pod="+pair[1]) {
			t.Errorf("pod %s → pod %s (%s): %v %q", pair[0], pair[1], podIP[pair[1]], err, out)
		}
	}
	// From a pod on the agent, the Service (and so the pods on the server).
	out, err := kubectl("exec", a, "--", "/echo", "get", "http://spread.default.svc.cluster.local/", "--retries", "10")
	if err != nil || !strings.Contains(out, "pod=spread-") {
		t.Errorf("the Service by name from a pod on the agent: %v %q", err, out)
	}
	// NodePort on both node IPs, from the host.
	for _, ip := range []string{sIP, aIP} {
		if body := httpGetRetry(t, fmt.Sprintf("http://%s:30090/", ip)); !strings.HasPrefix(body, "pod=spread-") {
			t.Errorf("NodePort on %s answered %q", ip, body)
		}
	}
	// NetworkPolicy across nodes: default-deny ingress for the spread pods
	// stops the agent's pod from reaching the server's, by pod IP and by
	// Service; a rule letting in pods labelled role=client lets it through
	// once the agent's pod carries that label; with the policies gone, all
	// is open again.
	reach := func(step, url string, want bool) {
		t.Helper()
		misses := 0
		waitFor(t, fmt.Sprintf("%s: %s from the agent's pod %v", step, url, map[bool]string{true: "answering", false: "refused"}[want]), time.Minute, func() (bool, string) {
			out, err := kubectl("exec", a, "--", "/echo", "get", url, "--timeout", "2s")
			if want {
				return err == nil && strings.HasPrefix(out, "pod="), out
			}
			if err != nil {
				misses++ // a refusal must be seen twice in a row
			} else {
				misses = 0
			}
			return misses >= 2, out
		})
	}
	toServerPod := "http://" + podIP[s] + ":8080/"
	policy := filepath.Join(srv.Dir, "policy.yaml")
	os.WriteFile(policy, []byte(spreadPolicies), 0o644)
	mustKubectl("apply", "-f", policy)
	reach("default-deny", toServerPod, false)
	mustKubectl("label", "pod", a, "role=client")
	reach("allowed by label", toServerPod, true)
	mustKubectl("delete", "-f", policy)
	mustKubectl("label", "pod", a, "role-")
	reach("policies deleted", toServerPod, true)
	if out, err := kubectl("exec", a, "--", "/echo", "get", "http://spread.default.svc.cluster.local/", "--retries", "10"); err != nil {
		t.Errorf("the Service from the agent's pod with the policies deleted: %v %q", err, out)
	}

	if pid := ag.cmd.Process.Pid; pid > 0 {
		if rss := rssKB(pid); rss > 0 {
			t.Logf("agent kubox RSS %d MB", rss/1024)
		}
	}

	// The server restarts while the agent runs: the agent's pods keep
	// running, untouched, and the agent reconnects by itself.
	agentPods := func() string {
		return mustKubectl("get", "pods", "-l", "app=spread", "--field-selector", "spec.nodeName=kbxt-agent", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount} {end}`)
	}
	before := agentPods()
	srv.Stop()
	srv.Start(serverArgs...)
	waitFor(t, "both nodes Ready after the server restarted", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		return err == nil && strings.Contains(out, "kbxt-server=True") && strings.Contains(out, "kbxt-agent=True"), out
	})
	if after := agentPods(); after != before {
		t.Errorf("the agent's pods changed across a server restart:\nbefore %s\nafter  %s", before, after)
	}

	// Cut the agent off: its node goes NotReady, its pods are replaced on
	// the server; with the link back, the node is Ready again.
	net.setLink(2, false)
	waitFor(t, "the agent's node NotReady with its link down", 3*time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "node", "kbxt-agent", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "Unknown" || out == "False", out
	})
	waitFor(t, "all spread pods running on the server", 3*time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "pods", "-l", "app=spread", "-o", `jsonpath={range .items[*]}{.spec.nodeName}/{.status.phase}/{.metadata.deletionTimestamp} {end}`)
		running := strings.Count(out, "kbxt-server/Running/ ")
		return running >= 4, out
	})
	net.setLink(2, true)
	waitFor(t, "the agent's node Ready with its link back", 3*time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "node", "kbxt-agent", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "True", out
	})

	// A deleted node registers again when its agent restarts, with its
	// join token long deleted. (The deletion may end the agent before the
	// test stops it: upstream kube-proxy exits when its Node is deleted,
	// leaving the restart to the service manager.)
	mustKubectl("delete", "node", "kbxt-agent")
	ag.Stop()
	ag.Start(agentArgs...)
	waitFor(t, "the deleted node back and Ready after its agent restarted", 3*time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "node", "kbxt-agent", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "True", out
	})
}

func mustKubectlToken(t *testing.T, srv *netNode, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := srv.exec(append([]string{srv.bin, "token"}, append(args[:1:1], append([]string{"--kubeconfig", kubeconfig}, args[1:]...)...)...)...)
	if err != nil {
		t.Fatalf("kubox token %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func rssKB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			var kb int
			fmt.Sscan(f[1], &kb)
			return kb
		}
	}
	return 0
}
