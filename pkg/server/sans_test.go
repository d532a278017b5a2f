package server

import (
	"net"
	"testing"

	"github.com/kubox-io/kubox/pkg/config"
)

// TestServingSANsSkipPodNetwork: the host's own addresses are SANs, the
// addresses kubox's pod network puts on the host (flannel.1, cni0) are not,
// so that a restart does not re-issue the certificate for them.
func TestServingSANsSkipPodNetwork(t *testing.T) {
	_, cluster, _ := net.ParseCIDR(config.DefaultClusterCIDR)
	_, service, _ := net.ParseCIDR(config.DefaultServiceCIDR)
	cfg := &config.Server{
		ClusterCIDRs:     config.CIDRs{cluster},
		ServiceCIDRs:     config.CIDRs{service},
		ClusterDomain:    "cluster.local",
		AdvertiseAddress: net.ParseIP("192.0.2.10"),
		BindAddress:      net.IPv4zero,
	}
	hosts := []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("198.51.100.7"), net.ParseIP("10.42.0.0"), net.ParseIP("10.42.0.1")}
	sans := servingSANs(cfg, hosts)
	has := func(s string) bool {
		for _, ip := range sans.IPs {
			if ip.Equal(net.ParseIP(s)) {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"198.51.100.7", "192.0.2.10", "10.43.0.1", "127.0.0.1"} {
		if !has(want) {
			t.Errorf("SANs lack %s: %v", want, sans.IPs)
		}
	}
	for _, bad := range []string{"10.42.0.0", "10.42.0.1"} {
		if has(bad) {
			t.Errorf("SANs hold the pod network's %s: %v", bad, sans.IPs)
		}
	}
}
