package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/kubox-io/kubox/pkg/hostnet"
)

// CIDRs are the ranges of one network (pods or Services), one per IP
// family: one for a single-stack cluster, an IPv4 and an IPv6 one for a
// dual-stack cluster. The first is the primary family's, as upstream
// takes it: Services without ipFamilies get an address of that family.
type CIDRs []*net.IPNet

// String is the comma-separated form upstream flags and kubox's own take.
func (c CIDRs) String() string {
	s := make([]string, len(c))
	for i, n := range c {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}

// Primary is the range of the primary family.
func (c CIDRs) Primary() *net.IPNet { return c[0] }

// DualStack tells whether there is a range of each family.
func (c CIDRs) DualStack() bool { return len(c) == 2 }

// Family is the range of the IPv6 family (v6) or the IPv4 one, nil if
// there is none.
func (c CIDRs) Family(v6 bool) *net.IPNet {
	for _, n := range c {
		if isIPv6(n.IP) == v6 {
			return n
		}
	}
	return nil
}

// Contains tells whether any of the ranges holds ip.
func (c CIDRs) Contains(ip net.IP) bool {
	for _, n := range c {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func isIPv6(ip net.IP) bool { return ip.To4() == nil }

func familyName(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// dualStackExample is how a user writes a dual-stack network.
const dualStackExample = "--cluster-cidr 10.42.0.0/16,fd42::/56 --service-cidr 10.43.0.0/16,fd43::/112"

// parseCIDRs parses one CIDR, or two of different families separated by a
// comma; "" is def.
func parseCIDRs(flag, v, def string) (CIDRs, error) {
	if v == "" {
		v = def
	}
	parts := strings.Split(v, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("invalid %s %q: give one CIDR, or an IPv4 and an IPv6 one separated by a comma (e.g. %s)", flag, v, dualStackExample)
	}
	var out CIDRs
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("invalid %s %q: an empty range; give one CIDR, or an IPv4 and an IPv6 one separated by a comma", flag, v)
		}
		n, err := parseCIDR(flag, strings.TrimSpace(p), def)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 2 && isIPv6(out[0].IP) == isIPv6(out[1].IP) {
		return nil, fmt.Errorf("invalid %s %q: both ranges are %s; a dual-stack network takes one IPv4 and one IPv6 range", flag, v, familyName(isIPv6(out[0].IP)))
	}
	return out, nil
}

// Node pod ranges the controller-manager cuts from each cluster CIDR (as
// k3s does), and how many bits larger than them an IPv6 cluster CIDR may
// be: the controller-manager refuses more (its clusterSubnetMaxDiff).
const (
	NodeCIDRMaskIPv4    = 24
	NodeCIDRMaskIPv6    = 64
	maxNodeCIDRMaskDiff = 16
)

// maxServiceHostBits is the API server's limit on a Service range: at most
// 2^20 addresses (its maxCIDRBits), a /12 for IPv4, a /108 for IPv6.
const maxServiceHostBits = 20

// networks parses and checks --cluster-cidr and --service-cidr together:
// the families must match in number and order, so that the first family is
// the primary one of both.
func networks(cluster, service string) (CIDRs, CIDRs, error) {
	cc, err := parseCIDRs("--cluster-cidr", cluster, DefaultClusterCIDR)
	if err != nil {
		return nil, nil, err
	}
	sc, err := parseCIDRs("--service-cidr", service, DefaultServiceCIDR)
	if err != nil {
		return nil, nil, err
	}
	if len(cc) != len(sc) || isIPv6(cc[0].IP) != isIPv6(sc[0].IP) {
		return nil, nil, fmt.Errorf("--cluster-cidr %s and --service-cidr %s differ in IP families: give both the same families in the same order (e.g. %s)", cc, sc, dualStackExample)
	}
	for _, n := range cc {
		ones, bits := n.Mask.Size()
		switch {
		case bits == 32 && ones > NodeCIDRMaskIPv4:
			return nil, nil, fmt.Errorf("invalid --cluster-cidr %s: each node takes a /%d of it, so it must be a /%d or larger", n, NodeCIDRMaskIPv4, NodeCIDRMaskIPv4)
		case bits == 128 && (ones > NodeCIDRMaskIPv6 || NodeCIDRMaskIPv6-ones > maxNodeCIDRMaskDiff):
			return nil, nil, fmt.Errorf("invalid --cluster-cidr %s: each node takes a /%d of it and the controller-manager allows at most %d bits more, so it must be a /%d to a /%d",
				n, NodeCIDRMaskIPv6, maxNodeCIDRMaskDiff, NodeCIDRMaskIPv6-maxNodeCIDRMaskDiff, NodeCIDRMaskIPv6)
		}
	}
	for _, n := range sc {
		if ones, bits := n.Mask.Size(); bits-ones > maxServiceHostBits {
			return nil, nil, fmt.Errorf("invalid --service-cidr %s: at most %d host bits allowed, the API server's limit (a /%d or longer for %s)", n, maxServiceHostBits, bits-maxServiceHostBits, familyName(bits == 128))
		}
	}
	for _, c := range cc {
		for _, s := range sc {
			if c.Contains(s.IP) || s.Contains(c.IP) {
				return nil, nil, fmt.Errorf("--cluster-cidr %s and --service-cidr %s overlap: choose ranges that do not", c, s)
			}
		}
	}
	return cc, sc, nil
}

// nodeIPs are the node's addresses (--node-ip, one or an IPv4 and an IPv6
// one separated by a comma), one per family of the cluster in its order.
// A family the user gave no address of is taken from the interface of the
// one given, or of the host's primary address.
func nodeIPs(v string, cluster CIDRs) ([]net.IP, error) {
	var ips []net.IP
	if v == "" {
		ips = []net.IP{hostnet.PrimaryIP()}
	} else {
		parts := strings.Split(v, ",")
		if len(parts) > 2 {
			return nil, fmt.Errorf("invalid --node-ip %q: give one address, or an IPv4 and an IPv6 one separated by a comma", v)
		}
		for _, p := range parts {
			ip, err := parseIP("--node-ip", strings.TrimSpace(p), "")
			if err != nil {
				return nil, err
			}
			ips = append(ips, ip)
		}
		if len(ips) == 2 && isIPv6(ips[0]) == isIPv6(ips[1]) {
			return nil, fmt.Errorf("invalid --node-ip %q: both are %s addresses; give an IPv4 and an IPv6 one", v, familyName(isIPv6(ips[0])))
		}
	}
	if !cluster.DualStack() {
		return ips, nil
	}
	var out []net.IP
	for _, n := range cluster {
		v6 := isIPv6(n.IP)
		ip := ipOfFamily(ips, v6)
		if ip == nil {
			ip = hostnet.InterfaceIP(ips[0], v6)
		}
		if ip == nil {
			how := "add one to it"
			if v6 {
				how = "add a global or ULA one to it (e.g. ip addr add fd00::10/64 dev eth0)"
			}
			return nil, fmt.Errorf("the cluster is dual-stack but the node has no %s address on the interface of %s: %s, or give both with --node-ip <IPv4>,<IPv6>", familyName(v6), ips[0], how)
		}
		out = append(out, ip)
	}
	return out, nil
}

func ipOfFamily(ips []net.IP, v6 bool) net.IP {
	for _, ip := range ips {
		if isIPv6(ip) == v6 {
			return ip
		}
	}
	return nil
}
