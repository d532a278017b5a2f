package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func joinDefaults(t *testing.T) JoinOptions {
	return JoinOptions{ServerURL: "https://10.0.0.1:6443", DataDir: t.TempDir(), LBServerPort: DefaultLBServerPort,
		Node: AgentOptions{NodeName: "edge-1", NodeIP: "10.0.0.2"}}
}

func TestJoinInvalid(t *testing.T) {
	for _, c := range []struct {
		mutate func(*JoinOptions)
		want   string
	}{
		{func(o *JoinOptions) { o.ServerURL = "" }, "no server to join"},
		{func(o *JoinOptions) { o.ServerURL = "http://10.0.0.1:6443" }, `invalid --server "http://10.0.0.1:6443"`},
		{func(o *JoinOptions) { o.ServerURL = "10.0.0.1:6443" }, "give it as https://"},
		{func(o *JoinOptions) { o.TokenFile = "/nonexistent/token" }, "cannot read --token-file"},
		{func(o *JoinOptions) { o.LBServerPort = 70000 }, "invalid --lb-server-port 70000"},
		{func(o *JoinOptions) { o.DataDir = "" }, "invalid --data-dir"},
		{func(o *JoinOptions) { o.Node.NodeName = "Edge_1" }, `invalid --node-name "Edge_1"`},
		{func(o *JoinOptions) { o.Node.NodeTaints = []string{"a=b:Sometimes"} }, "invalid --node-taint"},
	} {
		o := joinDefaults(t)
		c.mutate(&o)
		if _, err := o.Join(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error saying %q", err, c.want)
		}
	}
}

func TestJoin(t *testing.T) {
	o := joinDefaults(t)
	o.ServerURL = "https://box.example"
	o.TokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(o.TokenFile, []byte("K10abc::server:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := o.Join()
	if err != nil {
		t.Fatal(err)
	}
	if j.Token != "K10abc::server:secret" || j.ServerAddress != "box.example:6443" || j.LBAddress != "127.0.0.1:6444" {
		t.Errorf("token %q, server %q, balancer %q", j.Token, j.ServerAddress, j.LBAddress)
	}
	if j.Paths.RunDir == "" || !filepath.IsAbs(j.Paths.RunDir) || j.Paths.AgentTLSDir != filepath.Join(o.DataDir, "agent", "tls") {
		t.Errorf("paths %+v", j.Paths)
	}
	// The token on the command line wins over the file.
	o.Token = "K10def::server:other"
	if j, err = o.Join(); err != nil || j.Token != o.Token {
		t.Errorf("token %q, %v", j.Token, err)
	}
}

// TestJoinAgent: a node takes the cluster's values as its server sent them,
// the pod network backend among them; what the server left out takes the
// defaults, and what it sent wrong is refused.
func TestJoinAgent(t *testing.T) {
	o := joinDefaults(t)
	o.Node.FlannelBackend = "vxlan"
	j, err := o.Join()
	if err != nil {
		t.Fatal(err)
	}
	a, err := j.Agent(Cluster{ClusterCIDR: "10.52.0.0/16", ServiceCIDR: "10.53.0.0/16", ClusterDNS: "10.53.0.10",
		ServiceNodePorts: "31000-31999", FlannelBackend: "host-gw", Disabled: []string{"servicelb"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ClusterCIDRs.String() != "10.52.0.0/16" || a.ClusterDNS.String() != "10.53.0.10" || a.ClusterDomain != DefaultClusterDomain ||
		a.FlannelBackend != "host-gw" || !a.Disabled["servicelb"] || a.NodeName != "edge-1" || a.NodePorts != "31000-31999" || !a.NetworkPolicy {
		t.Errorf("node configuration %+v", a)
	}
	if a, err = j.Agent(Cluster{}); err != nil || a.ClusterCIDRs.String() != DefaultClusterCIDR || a.FlannelBackend != "vxlan" || a.NodePorts != DefaultNodePortRange {
		t.Errorf("with no cluster values: %+v, %v", a, err)
	}
	if _, err := j.Agent(Cluster{ClusterCIDR: "nonsense"}); err == nil || !strings.Contains(err.Error(), `invalid cluster CIDR "nonsense"`) {
		t.Errorf("a bad cluster CIDR gave %v", err)
	}
}

// TestServerCluster: what a server hands joining nodes, as they read it.
func TestServerCluster(t *testing.T) {
	o := defaults()
	o.AdvertiseAddress = "10.0.0.1"
	o.FlannelBackend = "host-gw"
	o.Disable = []string{"servicelb", "coredns"}
	s, err := o.Server()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(s.Cluster())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"clusterCIDR":"10.42.0.0/16","serviceCIDR":"10.43.0.0/16","serviceNodePorts":"30000-32767","clusterDNS":"10.43.0.10","clusterDomain":"cluster.local",` +
		`"flannelBackend":"host-gw","serverURLs":["https://10.0.0.1:6443"],"disabled":["coredns","servicelb"]}`
	if string(data) != want {
		t.Errorf("cluster values\n got %s\nwant %s", data, want)
	}
}

// TestWithNode: a server's node follows the cluster's backend; a server
// without a node runs no metrics-server and reserves no node name.
func TestWithNode(t *testing.T) {
	o := defaults()
	o.DataDir = t.TempDir()
	o.FlannelBackend = "host-gw"
	s, node, err := o.WithNode(AgentOptions{NodeName: "box", NodeIP: "10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if node == nil || node.FlannelBackend != "host-gw" || s.NodeName != "box" || s.Disabled["metrics-server"] {
		t.Errorf("server %+v node %+v", s, node)
	}
	s, node, err = o.WithNode(AgentOptions{DisableAgent: true, NodeName: "Not_Checked"})
	if err != nil || node != nil || s.NodeName != "" || !s.Disabled["metrics-server"] {
		t.Errorf("--disable-agent: server %+v node %+v, %v", s, node, err)
	}
}
