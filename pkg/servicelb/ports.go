package servicelb

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// Socket states in /proc/net/{tcp,udp}: a listening TCP socket, and a UDP
// socket bound but not connected.
const (
	tcpListen  = "0A"
	udpUnconn  = "07"
	procNetDir = "/proc/net"
)

// HostListening reports whether a socket of the node (this network
// namespace) listens on port at ip or at the unspecified address. SCTP is
// not tracked in these tables and never counts as taken.
func HostListening(proto string, ip net.IP, port int32) (bool, error) {
	var files []string
	state := tcpListen
	switch proto {
	case "TCP":
		files = []string{"tcp", "tcp6"}
	case "UDP":
		files, state = []string{"udp", "udp6"}, udpUnconn
	default:
		return false, nil
	}
	for _, f := range files {
		fh, err := os.Open(procNetDir + "/" + f)
		if os.IsNotExist(err) {
			continue // no IPv6 on this node
		} else if err != nil {
			return false, err
		}
		busy, err := listening(fh, state, ip, port)
		fh.Close()
		if err != nil {
			return false, fmt.Errorf("%s/%s: %w", procNetDir, f, err)
		}
		if busy {
			return true, nil
		}
	}
	return false, nil
}

// listening scans one socket table for a socket in state bound to port at
// ip or at the unspecified address.
func listening(r io.Reader, state string, ip net.IP, port int32) (bool, error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != state {
			continue
		}
		addr, p, err := parseAddr(f[1])
		if err != nil {
			return false, err
		}
		if p != port {
			continue
		}
		if addr.IsUnspecified() || addr.Equal(ip) {
			return true, nil
		}
	}
	return false, sc.Err()
}

// parseAddr decodes "0100007F:1F90": the address as the kernel stores it
// (32-bit words in host byte order, little-endian here) and a hex port.
func parseAddr(s string) (net.IP, int32, error) {
	h, ps, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("bad socket address %q", s)
	}
	port, err := strconv.ParseUint(ps, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port in %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, fmt.Errorf("bad address in %q", s)
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		ip[w], ip[w+1], ip[w+2], ip[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	return ip, int32(port), nil
}
