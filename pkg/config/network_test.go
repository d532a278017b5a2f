package config

import (
	"strings"
	"testing"
)

// TestDualStack: an IPv4 and an IPv6 range per network, in either order
// (the first is the primary family), carried to the node and to joining
// nodes as the user wrote them.
func TestDualStack(t *testing.T) {
	for _, c := range []struct{ cluster, service, dns, apiIP string }{
		{"10.42.0.0/16,fd42::/56", "10.43.0.0/16,fd43::/112", "10.43.0.10", "10.43.0.1"},
		{"fd42::/56,10.42.0.0/16", "fd43::/108,10.43.0.0/16", "fd43::a", "fd43::1"},
	} {
		o := defaults()
		o.ClusterCIDR, o.ServiceCIDR, o.ClusterDNS = c.cluster, c.service, c.dns
		s, node, err := o.WithNode(AgentOptions{NodeName: "n1", NodeIP: "192.0.2.10,2001:db8::10"})
		if err != nil {
			t.Fatalf("%s / %s: %v", c.cluster, c.service, err)
		}
		if s.ClusterCIDRs.String() != c.cluster || s.ServiceCIDRs.String() != c.service || !s.ClusterCIDRs.DualStack() {
			t.Errorf("ranges %s / %s, want %s / %s", s.ClusterCIDRs, s.ServiceCIDRs, c.cluster, c.service)
		}
		if got := s.APIServiceIP().String(); got != c.apiIP {
			t.Errorf("API service IP %s, want %s", got, c.apiIP)
		}
		// The node's addresses follow the cluster's order of families.
		if isIPv6(node.NodeIPs[0]) != isIPv6(s.ClusterCIDRs[0].IP) || len(node.NodeIPs) != 2 {
			t.Errorf("node IPs %v for cluster %s", node.NodeIPs, s.ClusterCIDRs)
		}
		cl := s.Cluster()
		if cl.ClusterCIDR != c.cluster || cl.ServiceCIDR != c.service {
			t.Errorf("joining nodes get %q / %q", cl.ClusterCIDR, cl.ServiceCIDR)
		}
		j := &Join{Paths: s.Paths, Node: AgentOptions{NodeName: "n2", NodeIP: "2001:db8::11,192.0.2.11"}}
		a, err := j.Agent(cl)
		if err != nil || a.ClusterCIDRs.String() != c.cluster || a.ServiceCIDRs.String() != c.service || isIPv6(a.NodeIP()) != isIPv6(s.ClusterCIDRs[0].IP) {
			t.Errorf("a joining node: %+v, %v", a, err)
		}
	}
}

// TestDualStackInvalid: each mistake is one line naming the flag and how
// to write it right.
func TestDualStackInvalid(t *testing.T) {
	cases := []struct{ cluster, service, want string }{
		{"10.42.0.0/16,10.44.0.0/16", "", `invalid --cluster-cidr "10.42.0.0/16,10.44.0.0/16": both ranges are IPv4`},
		{"10.42.0.0/16,fd42::/56", "10.43.0.0/16,fd43::/112,fd44::/112", "give one CIDR, or an IPv4 and an IPv6 one separated by a comma"},
		{"10.42.0.0/16,fd42::/56", "", "--cluster-cidr 10.42.0.0/16,fd42::/56 and --service-cidr 10.43.0.0/16 differ in IP families"},
		{"fd42::/56,10.42.0.0/16", "10.43.0.0/16,fd43::/112", "differ in IP families: give both the same families in the same order"},
		{"10.42.0.0/16,fd42::/56", "10.43.0.0/16,fd43::/64", "invalid --service-cidr fd43::/64: at most 20 host bits allowed, the API server's limit (a /108 or longer for IPv6)"},
		{"10.42.0.0/16,fd42::/56", "10.43.0.0/16,fd43:::/112", `invalid --service-cidr "fd43:::/112": not a CIDR`},
		{"10.42.0.0/16,fd42::1/56", "10.43.0.0/16,fd43::/112", "host bits set; did you mean fd42::/56?"},
		{"10.42.0.0/16,fd42::/32", "10.43.0.0/16,fd43::/112", "invalid --cluster-cidr fd42::/32: each node takes a /64 of it and the controller-manager allows at most 16 bits more, so it must be a /48 to a /64"},
		{"10.42.0.0/16,fd42::/72", "10.43.0.0/16,fd43::/112", "so it must be a /48 to a /64"},
		{"10.42.0.0/25", "", "invalid --cluster-cidr 10.42.0.0/25: each node takes a /24 of it"},
		{"10.42.0.0/16,fd42::/56", "10.43.0.0/16,fd42:0:0:10::/112", "--cluster-cidr fd42::/56 and --service-cidr fd42:0:0:10::/112 overlap"},
		{"10.42.0.0/16,", "", `invalid --cluster-cidr "10.42.0.0/16,": an empty range`},
	}
	for _, c := range cases {
		o := defaults()
		o.ClusterCIDR, o.ServiceCIDR = c.cluster, c.service
		_, err := o.Server()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("--cluster-cidr %q --service-cidr %q: want one line containing %q, got %v", c.cluster, c.service, c.want, err)
		}
	}
}

// TestDualStackNodeIP: --node-ip takes one address of each family; a
// dual-stack node without an address of the other family on the same
// interface is refused with how to fix it.
func TestDualStackNodeIP(t *testing.T) {
	o := defaults()
	o.ClusterCIDR, o.ServiceCIDR = "10.42.0.0/16,fd42::/56", "10.43.0.0/16,fd43::/112"
	s, err := o.Server()
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{
		"192.0.2.10,192.0.2.11":   `invalid --node-ip "192.0.2.10,192.0.2.11": both are IPv4 addresses`,
		"192.0.2.10,::1,10.0.0.1": "give one address, or an IPv4 and an IPv6 one",
		"192.0.2.10,nonsense":     `invalid --node-ip "nonsense": not an IP address`,
		// 192.0.2.10 is on no interface here, so it has no IPv6 partner.
		"192.0.2.10": "the cluster is dual-stack but the node has no IPv6 address on the interface of 192.0.2.10: add a global or ULA one to it",
	} {
		if _, err := (AgentOptions{NodeName: "n1", NodeIP: ip}).Agent(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--node-ip %s: want %q, got %v", ip, want, err)
		}
	}
	// A single-stack cluster keeps the addresses as given.
	s, _ = defaults().Server()
	if a, err := (AgentOptions{NodeName: "n1", NodeIP: "192.0.2.10"}).Agent(s); err != nil || len(a.NodeIPs) != 1 || a.NodeIP().String() != "192.0.2.10" {
		t.Errorf("single-stack node IPs %v, %v", a, err)
	}
}
