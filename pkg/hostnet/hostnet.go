// Package hostnet answers questions about the host's network that kubox's
// defaults depend on: which address is the node's primary one, and which
// addresses the API server can be reached at.
package hostnet

import (
	"net"
	"sort"
)

// PrimaryIP returns the source address the host would use to reach the
// outside (the default route's), without sending a packet: a UDP "connect"
// only picks a route. It falls back to the first global unicast address and
// then to 127.0.0.1.
func PrimaryIP() net.IP {
	if c, err := net.Dial("udp4", "203.0.113.1:9"); err == nil {
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		if ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
			return ip
		}
	}
	for _, ip := range Addresses() {
		if ip.To4() != nil {
			return ip
		}
	}
	return net.IPv4(127, 0, 0, 1)
}

// Addresses returns the host's global unicast addresses (no loopback, no
// link-local), sorted so that callers get a stable order.
func Addresses() []net.IP {
	var out []net.IP
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		out = append(out, ipn.IP)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// InterfaceIP returns a global unicast address (ULA included) of the
// IPv6 family (v6) or the IPv4 one on the interface that holds ip, nil if
// there is none: a node's address of its other family.
func InterfaceIP(ip net.IP, v6 bool) net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil || !holds(addrs, ip) {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() && (n.IP.To4() == nil) == v6 {
				if v6 {
					return n.IP
				}
				return n.IP.To4()
			}
		}
	}
	return nil
}

func holds(addrs []net.Addr, ip net.IP) bool {
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
