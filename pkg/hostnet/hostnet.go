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
