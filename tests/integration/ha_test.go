package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/tests/testenv"
)

// TestServerJoin: a second server joins the first's embedded etcd with the
// server token (as a learner, promoted once caught up) and serves the same
// cluster; restarted without the token, it rejoins from its own member; a
// wrong token is refused in one line.
func TestServerJoin(t *testing.T) {
	testenv.LockNodes(t)
	net := newTestNet(t)
	ns1, ip1 := net.addNamespace(1)
	ns2, ip2 := net.addNamespace(2)
	ns3, _ := net.addNamespace(3)
	one := newNetNode(t, "server-1", ns1, ip1)
	two := newNetNode(t, "server-2", ns2, ip2)
	args := func(n *netNode, ip string, extra ...string) []string {
		return append([]string{"server", "--config", n.emptyCfg, "--data-dir", n.DataDir, "--run-dir", n.RunDir,
			"--write-kubeconfig", filepath.Join(n.Dir, "kubeconfig.yaml"), "--advertise-address", ip, "--disable-agent"}, extra...)
	}
	kubectl := func(n *netNode, a ...string) (string, error) {
		return n.exec(append([]string{n.bin, "kubectl", "--kubeconfig", filepath.Join(n.Dir, "kubeconfig.yaml")}, a...)...)
	}
	serving := func(n *netNode) {
		t.Helper()
		waitFor(t, n.name+" serving", 2*time.Minute, func() (bool, string) {
			out, err := kubectl(n, "get", "--raw", "/readyz")
			return err == nil, out
		})
	}

	one.Start(args(one, ip1, "--cluster-init")...)
	serving(one)
	token, err := os.ReadFile(filepath.Join(one.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + ip1 + ":6443"

	// A wrong secret with the right CA hash: refused, one line.
	hash, _, _ := strings.Cut(strings.TrimSpace(string(token)), "::")
	dir := t.TempDir()
	out, err := runIn(ns3, one.bin, time.Minute, "server", "--config", one.emptyCfg, "--data-dir", filepath.Join(dir, "data"),
		"--run-dir", filepath.Join(dir, "run"), "--disable-agent", "--server", server, "--token", hash+"::"+strings.Repeat("ab", 32))
	if err == nil || !strings.Contains(out, "does not know the token") {
		t.Errorf("a server with a wrong token: want a refusal naming the token, got %v:\n%s", err, out)
	}

	two.Start(args(two, ip2, "--server", server, "--token", strings.TrimSpace(string(token)))...)
	serving(two)
	if _, err := kubectl(one, "create", "namespace", "from-one"); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectl(two, "create", "namespace", "from-two"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*netNode{one, two} {
		if out, err := kubectl(n, "get", "namespace", "from-one", "from-two"); err != nil {
			t.Fatalf("%s does not see both servers' writes: %v\n%s", n.name, err, out)
		}
	}
	members := func() []string {
		t.Helper()
		tls := filepath.Join(one.DataDir, "server", "tls", "etcd")
		cfg, err := (transport.TLSInfo{CertFile: filepath.Join(tls, "etcd-client.crt"), KeyFile: filepath.Join(tls, "etcd-client.key"),
			TrustedCAFile: filepath.Join(tls, "etcd-ca.crt")}).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + ip1 + ":2379"}, TLS: cfg, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		list, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range list.Members {
			s := m.Name + "=" + strings.Join(m.PeerURLs, ",")
			if m.IsLearner {
				s += " (learner)"
			}
			out = append(out, s)
		}
		return out
	}
	if m := members(); len(m) != 2 || strings.Contains(strings.Join(m, " "), "learner") {
		t.Fatalf("etcd members: %v, want two voting ones", m)
	}

	// Restarted without --server and the token, the second server rejoins
	// from its own member.
	two.Stop()
	two.Start(args(two, ip2)...)
	serving(two)
	if out, err := kubectl(two, "get", "namespace", "from-one"); err != nil {
		t.Fatalf("after its restart the second server does not serve the cluster: %v\n%s", err, out)
	}
	if m := members(); len(m) != 2 {
		t.Errorf("etcd members after the restart: %v", m)
	}
}
