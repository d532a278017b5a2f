package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// TestHA: three servers on an embedded etcd and an agent, each in its own
// network namespace, on flannel's host-gw backend. Servers 2 and 3 join
// server 1 (as etcd learners, promoted once caught up); a Deployment runs on
// every node. Server 1 killed, the API answers through the others, writes
// succeed, the agent stays Ready and pods keep running; restarted, server 1
// rejoins by itself. Deleting server 3's node removes its member and ends
// it. Along the way: a wrong token and --cluster-init on a joined member
// are refused in one line, and the agent renews its short-lived
// certificates through whichever server answers.
func TestHA(t *testing.T) {
	images := testImages(t)
	testenv.LockNodes(t)
	net := newTestNet(t)
	var nodes []*netNode
	for i, name := range []string{"s1", "s2", "s3", "agent"} {
		ns, ip := net.addNamespace(i + 1)
		n := newNetNode(t, name, ns, ip)
		n.airGapImage(filepath.Join(images, "echo.tar"))
		nodes = append(nodes, n)
	}
	s1, s2, s3, ag := nodes[0], nodes[1], nodes[2], nodes[3]
	xNS, _ := net.addNamespace(5) // for servers that must be refused
	kubeconfig := func(n *netNode) string { return filepath.Join(n.Dir, "kubeconfig.yaml") }
	nodeArgs := func(n *netNode) []string {
		return []string{"--config", n.emptyCfg, "--data-dir", n.DataDir, "--run-dir", n.RunDir, "--node-name", "kbxt-" + n.name,
			"--node-ip", n.ip, "--flannel-iface", "eth0", "--resolv-conf", n.resolv}
	}
	serverArgs := func(n *netNode, extra ...string) []string {
		a := append([]string{"server"}, nodeArgs(n)...)
		a = append(a, "--write-kubeconfig", kubeconfig(n), "--advertise-address", n.ip, "--flannel-backend", "host-gw",
			"--node-cert-validity", nodeCertValidity.String())
		return append(a, extra...)
	}
	kubectl := func(n *netNode, args ...string) (string, error) {
		return n.exec(append([]string{n.bin, "kubectl", "--kubeconfig", kubeconfig(n), "--request-timeout", "10s"}, args...)...)
	}
	mustKubectl := func(n *netNode, args ...string) string {
		t.Helper()
		out, err := kubectl(n, args...)
		if err != nil {
			t.Fatalf("kubectl (through %s) %s: %v\n%s", n.name, strings.Join(args, " "), err, out)
		}
		return out
	}
	serving := func(n *netNode, timeout time.Duration) {
		t.Helper()
		waitFor(t, n.name+" serving", timeout, func() (bool, string) {
			out, err := kubectl(n, "get", "--raw", "/readyz")
			return err == nil, out
		})
	}
	readyNodes := func(n *netNode) string {
		out, _ := kubectl(n, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		return out
	}
	members := func(n *netNode) (string, error) {
		return n.exec(n.bin, "etcd", "member", "list", "--config", n.emptyCfg, "--data-dir", n.DataDir)
	}
	healthyMembers := func(out string) (voting, healthy int) {
		for _, l := range strings.Split(out, "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 7 {
				continue
			}
			if f[4] == "false" {
				voting++
			}
			if f[6] == "healthy" {
				healthy++
			}
		}
		return voting, healthy
	}

	s1.Start(serverArgs(s1, "--cluster-init")...)
	serving(s1, 3*time.Minute)
	tokenData, err := os.ReadFile(filepath.Join(s1.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenData))
	server := "https://" + s1.ip + ":6443"

	// A wrong secret with the right CA hash: refused, one line.
	hash, _, _ := strings.Cut(token, "::")
	dir := t.TempDir()
	out, err := runIn(xNS, s1.bin, time.Minute, "server", "--config", s1.emptyCfg, "--data-dir", filepath.Join(dir, "data"),
		"--run-dir", filepath.Join(dir, "run"), "--disable-agent", "--server", server, "--token", hash+"::"+strings.Repeat("ab", 32))
	if err == nil || !strings.Contains(out, "does not know the token") {
		t.Errorf("a server with a wrong token: want a refusal naming the token, got %v:\n%s", err, out)
	}

	// Servers 2 and 3 join together: etcd takes one learner at a time.
	for _, n := range []*netNode{s2, s3} {
		n.Start(serverArgs(n, "--server", server, "--token", token)...)
	}
	for _, n := range []*netNode{s2, s3} {
		serving(n, 4*time.Minute)
	}
	// --cluster-init on a member that joined: refused before anything.
	out, err = runIn(xNS, s2.bin, time.Minute, serverArgs(s2, "--cluster-init")...)
	if err == nil || !strings.Contains(lastLine(out), "drop --cluster-init") {
		t.Errorf("--cluster-init on a joined member: want one line saying to drop it, got %v:\n%s", err, out)
	}

	agentToken := strings.TrimSpace(mustKubectlToken(t, s1, kubeconfig(s1), "create", "--ttl", "1h"))
	ag.Start(append([]string{"agent", "--server", server, "--token", agentToken}, nodeArgs(ag)...)...)
	joined := time.Now()
	waitFor(t, "all four nodes Ready", 4*time.Minute, func() (bool, string) {
		out := readyNodes(s1)
		return strings.Count(out, "=True") == 4, out
	})
	roles := mustKubectl(s1, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}:{.metadata.labels.node-role\.kubernetes\.io/control-plane},{.metadata.labels.node-role\.kubernetes\.io/etcd} {end}`)
	for _, want := range []string{"kbxt-s1:true,true", "kbxt-s2:true,true", "kbxt-s3:true,true", "kbxt-agent:,"} {
		if !strings.Contains(roles+" ", want+" ") {
			t.Errorf("node roles %q: want %q", roles, want)
		}
	}
	waitFor(t, "three healthy voting etcd members", time.Minute, func() (bool, string) {
		out, err := members(s1)
		v, h := healthyMembers(out)
		return err == nil && v == 3 && h == 3, out
	})

	manifest := filepath.Join(s1.Dir, "spread.yaml")
	os.WriteFile(manifest, []byte(strings.Replace(spreadDeployment, "replicas: 4", "replicas: 6", 1)), 0o644)
	mustKubectl(s1, "apply", "-f", manifest)
	if out, err := kubectl(s1, "rollout", "status", "deployment/spread", "--timeout=180s"); err != nil {
		t.Fatalf("deployment not available: %v\n%s\n%s", err, out, mustKubectl(s1, "get", "pods", "-o", "wide"))
	}
	podsByNode := func(n *netNode) map[string]string { // node → its pods' containers and restarts
		out := mustKubectl(n, "get", "pods", "-l", "app=spread", "-o",
			`jsonpath={range .items[*]}{.spec.nodeName} {.metadata.name}={.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount}{"\n"}{end}`)
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if node, pod, ok := strings.Cut(l, " "); ok {
				m[node] += pod + " "
			}
		}
		return m
	}
	before := podsByNode(s1)
	for _, n := range nodes {
		if before["kbxt-"+n.name] == "" {
			t.Errorf("no spread pod on %s: %v", n.name, before)
		}
		// host-gw: plain routes between the nodes, no vxlan device.
		if out, err := n.exec("ip", "link", "show", "flannel.1"); err == nil {
			t.Errorf("%s has a vxlan device with the host-gw backend:\n%s", n.name, out)
		}
	}
	// From the agent, the ClusterIP reaches the pods of every node.
	clusterIP := strings.TrimSpace(mustKubectl(s1, "get", "svc", "spread", "-o", "jsonpath={.spec.clusterIP}"))
	podNode := map[string]string{}
	for node, pods := range before {
		for _, p := range strings.Fields(pods) {
			name, _, _ := strings.Cut(p, "=")
			podNode[name] = node
		}
	}
	seen := map[string]bool{}
	waitFor(t, "the ClusterIP from the agent reaching pods on all four nodes", 2*time.Minute, func() (bool, string) {
		if out, err := ag.exec("curl", "-sS", "--max-time", "3", "http://"+clusterIP+"/"); err == nil {
			seen[podNode[strings.TrimPrefix(strings.Fields(out + " x")[0], "pod=")]] = true
		}
		return len(seen) == 4 && !seen[""], fmt.Sprint(seen)
	})

	// Server 1 dies. Within 30 s the other two answer and take writes.
	s1.Kill()
	killed := time.Now()
	for i, n := range []*netNode{s2, s3} {
		waitFor(t, n.name+" taking writes after server 1 died", 30*time.Second-time.Since(killed), func() (bool, string) {
			out, err := kubectl(n, "create", "configmap", fmt.Sprintf("after-s1-died-%d", i))
			return err == nil || strings.Contains(out, "AlreadyExists"), out
		})
	}
	t.Logf("servers 2 and 3 took writes %.1fs after server 1 was killed", time.Since(killed).Seconds())
	// The agent stays Ready through it all (past the node monitor's grace
	// period, when server 1's node goes NotReady), reaching the API through
	// servers 2 and 3.
	agentDown := ""
	waitFor(t, "server 1's node NotReady", 2*time.Minute, func() (bool, string) {
		out := readyNodes(s2)
		if !strings.Contains(out, "kbxt-agent=True") && agentDown == "" {
			agentDown = out
		}
		return !strings.Contains(out, "kbxt-s1=True"), out
	})
	if agentDown != "" {
		t.Errorf("the agent's node was not Ready after server 1 died: %s", agentDown)
	}
	// Server 2 or 3 now runs the controllers (their node controller marked
	// server 1's node), started long after its kubelet in the same
	// process: CSI drivers still register on both.
	for _, n := range []*netNode{s2, s3} {
		checkCSIRegistration(t, func(args ...string) (string, error) { return kubectl(n, args...) }, n.DataDir, "kbxt-"+n.name, "csi.kubox.test")
	}
	// The pods the other nodes had run on, same containers, no restarts.
	// Server 1's pods tolerate its unreachable node for 10 s only, so their
	// replacements may have joined them by now.
	after := podsByNode(s2)
	for _, n := range []*netNode{s2, s3, ag} {
		node := "kbxt-" + n.name
		for _, p := range strings.Fields(before[node]) {
			if !slices.Contains(strings.Fields(after[node]), p) {
				t.Errorf("pod %s on %s changed after server 1 died:\nbefore %s\nafter  %s", p, node, before[node], after[node])
			}
		}
	}

	// Restarted with its own flags, server 1 rejoins by itself.
	s1.Start(serverArgs(s1, "--cluster-init")...)
	waitFor(t, "server 1's node Ready again", 3*time.Minute, func() (bool, string) {
		out := readyNodes(s1)
		return strings.Count(out, "=True") == 4, out
	})
	waitFor(t, "three healthy voting etcd members after server 1's restart", time.Minute, func() (bool, string) {
		out, err := members(s2)
		v, h := healthyMembers(out)
		return err == nil && v == 3 && h == 3, out
	})

	// Deleting server 3's node takes its member out, and server 3 stops
	// (its kube-proxy ends the process when its node goes, as upstream's
	// does). Started again, it stops at once, saying why.
	mustKubectl(s1, "delete", "node", "kbxt-s3")
	waitFor(t, "server 3's etcd member removed", time.Minute, func() (bool, string) {
		out, err := members(s1)
		return err == nil && strings.Count(strings.TrimSpace(out), "\n") == 2, out
	})
	if !s3.waitExit(time.Minute) {
		t.Fatalf("server 3 still runs a minute after its node was deleted")
	}
	s3.Start(serverArgs(s3, "--server", server, "--token", token)...)
	if !s3.waitExit(2 * time.Minute) {
		t.Fatalf("server 3, started again after its member was removed, still runs")
	}
	if log, _ := os.ReadFile(filepath.Join(s3.Dir, "kubox.log")); !strings.Contains(lastLines(string(log), 3), "etcd member was removed from the cluster") {
		t.Errorf("server 3's log does not end saying its member was removed:\n%s", lastLines(string(log), 10))
	}
	mustKubectl(s2, "create", "configmap", "after-s3-left")

	// Past its first certificates' expiry, the agent is Ready: it renewed
	// them through a server that answered.
	if wait := time.Until(joined.Add(nodeCertValidity + 15*time.Second)); wait > 0 {
		t.Logf("waiting %s for the agent's first certificates to expire", wait.Round(time.Second))
		time.Sleep(wait)
	}
	expired := joined.Add(nodeCertValidity + 5*time.Second)
	waitFor(t, "the agent's node lease renewed past its first certificates' expiry", time.Minute, func() (bool, string) {
		out, _ := kubectl(s2, "get", "lease", "-n", "kube-node-lease", "kbxt-agent", "-o", "jsonpath={.spec.renewTime}")
		renewed, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(out))
		return err == nil && renewed.After(expired), out
	})
	agentPod := strings.Fields(before["kbxt-agent"])[0]
	agentPod, _, _ = strings.Cut(agentPod, "=")
	if out, err := kubectl(s2, "logs", agentPod, "--tail", "1"); err != nil {
		t.Errorf("kubectl logs of a pod on the agent past its first certificates' expiry: %v\n%s", err, out)
	}
}

// nodeCertValidity is how long the HA cluster's node certificates are
// valid: the agent must renew its own while the test runs.
const nodeCertValidity = 2 * time.Minute

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
