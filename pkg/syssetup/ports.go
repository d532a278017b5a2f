package syssetup

import (
	"fmt"
	"net"
	"strconv"
)

// port is one port a kubox node or server listens on by default.
type port struct {
	num   int
	udp   bool
	addr  string // "" for every address, or the loopback address it uses
	what  string
	fixed string // the flag that moves it, "" when none does
}

// defaultPorts are the ports kubox listens on with its defaults: a
// server's API and etcd peers, every node's kubelet, kube-proxy and
// flannel's vxlan, an agent's API balancer.
func defaultPorts() []port {
	return []port{
		{num: 6443, what: "API server", fixed: "--https-listen-port"},
		{num: 2379, what: "embedded etcd clients, on --cluster-init servers"},
		{num: 2380, what: "embedded etcd peers, on --cluster-init servers"},
		{num: 10250, what: "kubelet"},
		{num: 6444, addr: "127.0.0.1", what: "an agent's API balancer"},
		{num: 10249, addr: "127.0.0.1", what: "kube-proxy's metrics"},
		{num: 10256, addr: "127.0.0.1", what: "kube-proxy's health"},
		{num: 8472, udp: true, what: "flannel's vxlan"},
	}
}

// Ports reports, for each port kubox listens on by default, whether it is
// free. A port in use is not fatal: kubox itself holds them while it runs
// here, and some belong to one role only. --require port-<n> makes one so.
func Ports() []Requirement {
	var r []Requirement
	for _, p := range defaultPorts() {
		proto, ss := "TCP", "ss -ltnp"
		if p.udp {
			proto, ss = "UDP", "ss -lunp"
		}
		req := Requirement{
			ID:   "port-" + strconv.Itoa(p.num),
			Name: fmt.Sprintf("%s port %d free, for %s", proto, p.num, p.what),
			OK:   true,
		}
		if err := bindable(p); err != nil {
			req.OK = false
			req.Info = "in use: by kubox itself if it runs here"
			req.Fix = fmt.Sprintf("stop what listens on it (%s 'sport = :%d')", ss, p.num)
			if p.fixed != "" {
				req.Fix += ", or choose another port with " + p.fixed
			}
		}
		r = append(r, req)
	}
	return r
}

// bindable tries to listen on p and lets go at once.
func bindable(p port) error {
	addr := net.JoinHostPort(p.addr, strconv.Itoa(p.num))
	if p.udp {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}
