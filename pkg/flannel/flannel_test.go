package flannel

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/lease"
	"github.com/flannel-io/flannel/pkg/subnet"
)

// Prepare writes flannel's network configuration before it needs the API.
// A kubeconfig that does not exist stops it right after, so the file can
// be checked without a cluster, root or a kernel interface.
func TestPrepareWritesNetConf(t *testing.T) {
	for name, flannelType := range map[string]string{"vxlan": "vxlan", "host-gw": "host-gw", "wireguard-native": "wireguard"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			confDir := filepath.Join(dir, "agent", "conf")
			t.Setenv("NODE_NAME", "outer")
			_, err := Prepare(context.Background(), Config{
				NodeName:     "node-a",
				NodeIPs:      []net.IP{net.ParseIP("192.0.2.10")},
				Backend:      name,
				ClusterCIDRs: []*net.IPNet{cidr(t, "10.52.0.0/16")},
				Kubeconfig:   filepath.Join(dir, "missing.kubeconfig"),
				ConfDir:      confDir,
				SubnetFile:   filepath.Join(dir, "run", "subnet.env"),
				CNIConfDir:   filepath.Join(dir, "net.d"),
				CNIIPAMDir:   filepath.Join(dir, "networks"),
			})
			if err == nil {
				t.Fatal("Prepare succeeded without a kubeconfig")
			}
			t.Log(err)
			oneLine(t, err)
			if !strings.HasPrefix(err.Error(), "flannel subnet manager: ") {
				t.Errorf("error %q does not say which part failed", err)
			}
			// flannel's subnet manager reads NODE_NAME; Prepare must give
			// the process its own value back.
			if got := os.Getenv("NODE_NAME"); got != "outer" {
				t.Errorf("NODE_NAME after Prepare = %q, want outer", got)
			}
			path := filepath.Join(confDir, "flannel-net-conf.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Parsed as flannel itself parses it.
			sc, err := subnet.ParseConfig(string(data))
			if err != nil {
				t.Fatalf("flannel cannot parse %s: %v", data, err)
			}
			if sc.BackendType != flannelType {
				t.Errorf("backend type = %q, want %q", sc.BackendType, flannelType)
			}
			// flannel knows the type: the backend is linked in.
			ip := net.ParseIP("192.0.2.10")
			ext := &backend.ExternalInterface{Iface: &net.Interface{Name: "eth0", MTU: 1500}, IfaceAddr: ip, ExtAddr: ip}
			if _, err := backend.NewManager(context.Background(), nil, ext).GetBackend(sc.BackendType); err != nil {
				t.Errorf("flannel's backend manager: %v", err)
			}
			if flannelType == "wireguard" {
				var wg struct{ PersistentKeepaliveInterval int }
				if err := json.Unmarshal(sc.Backend, &wg); err != nil || wg.PersistentKeepaliveInterval != 25 {
					t.Errorf("wireguard backend configuration %s (%v); want PersistentKeepaliveInterval 25", sc.Backend, err)
				}
			}
			if !sc.EnableIPv4 || sc.EnableIPv6 {
				t.Errorf("EnableIPv4, EnableIPv6 = %v, %v; want true, false", sc.EnableIPv4, sc.EnableIPv6)
			}
			if got := sc.Network.String(); got != "10.52.0.0/16" {
				t.Errorf("network = %s, want 10.52.0.0/16", got)
			}
			for p, want := range map[string]os.FileMode{path: 0o600, confDir: 0o700} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s mode = %v, want %v", p, fi.Mode().Perm(), want)
				}
			}
			// Nothing past the subnet manager ran.
			for _, p := range []string{filepath.Join(dir, "run", "subnet.env"), filepath.Join(dir, "net.d", ConflistName)} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failed start (err %v)", p, err)
				}
			}
		})
	}
}

// Without NODE_NAME set before, Prepare leaves it unset.
func TestPrepareUnsetsNodeName(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	os.Unsetenv("NODE_NAME")
	dir := t.TempDir()
	_, err := Prepare(context.Background(), Config{
		NodeName: "node-a", Backend: "vxlan", ClusterCIDRs: []*net.IPNet{cidr(t, "10.42.0.0/16")},
		Kubeconfig: filepath.Join(dir, "missing"), ConfDir: dir,
	})
	if err == nil {
		t.Fatal("Prepare succeeded without a kubeconfig")
	}
	if v, had := os.LookupEnv("NODE_NAME"); had {
		t.Errorf("NODE_NAME = %q after Prepare, want unset", v)
	}
}

// loopback returns the name of the interface holding 127.0.0.1, or skips.
func loopback(t *testing.T) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Skipf("no interfaces: %v", err)
	}
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(net.IPv4(127, 0, 0, 1)) {
				return ifc.Name
			}
		}
	}
	t.Skip("no interface holds 127.0.0.1")
	return ""
}

func TestExternalInterface(t *testing.T) {
	lo := loopback(t)
	t.Run("by node IP", func(t *testing.T) {
		ext, err := externalInterface("", []net.IP{net.ParseIP("127.0.0.1")}, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if ext.IfaceName != lo || ext.Iface.Name != lo {
			t.Errorf("interface = %q, want %q", ext.IfaceName, lo)
		}
		// Four bytes: flannel writes them into the VXLAN device and the
		// node annotation.
		if len(ext.IfaceAddr) != 4 || !ext.IfaceAddr.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("IfaceAddr = %v (len %d), want 127.0.0.1 in 4 bytes", ext.IfaceAddr, len(ext.IfaceAddr))
		}
		if len(ext.ExtAddr) != 4 || !ext.ExtAddr.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("ExtAddr = %v (len %d), want 127.0.0.1 in 4 bytes", ext.ExtAddr, len(ext.ExtAddr))
		}
	})
	t.Run("by name", func(t *testing.T) {
		ext, err := externalInterface(lo, nil, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if ext.IfaceName != lo || ext.IfaceAddr.To4() == nil || !ext.ExtAddr.Equal(ext.IfaceAddr) {
			t.Errorf("got %s %v ext %v, want %s with its own IPv4 address as both", ext.IfaceName, ext.IfaceAddr, ext.ExtAddr, lo)
		}
	})
}

func TestExternalInterfaceErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		iface  string
		nodeIP net.IP
		want   string
	}{
		{"unknown interface", "kubox-nosuch0", net.ParseIP("127.0.0.1"), "--flannel-iface kubox-nosuch0: no such interface with an IPv4 address"},
		// TEST-NET-1 is on no host.
		{"node IP on no interface", "", net.ParseIP("192.0.2.77"), "no interface holds the node IP 192.0.2.77; set --node-ip or --flannel-iface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := externalInterface(tc.iface, []net.IP{tc.nodeIP}, true, false)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q, want %q", err, tc.want)
			}
		})
	}
}

// TestNetConfigDualStack: flannel gets a network of each family the
// cluster has, as flannel itself parses it.
func TestNetConfigDualStack(t *testing.T) {
	for _, ranges := range [][]string{{"10.42.0.0/16", "fd42::/56"}, {"fd42::/56", "10.42.0.0/16"}} {
		data, err := json.Marshal(netConfig([]*net.IPNet{cidr(t, ranges[0]), cidr(t, ranges[1])}, "vxlan"))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := subnet.ParseConfig(string(data))
		if err != nil {
			t.Fatalf("flannel cannot parse %s: %v", data, err)
		}
		if !sc.EnableIPv4 || !sc.EnableIPv6 || sc.Network.String() != "10.42.0.0/16" || sc.IPv6Network.String() != "fd42::/56" {
			t.Errorf("%v: flannel reads %+v", ranges, sc)
		}
	}
	data, _ := json.Marshal(netConfig([]*net.IPNet{cidr(t, "10.42.0.0/16")}, "vxlan"))
	if sc, err := subnet.ParseConfig(string(data)); err != nil || !sc.EnableIPv4 || sc.EnableIPv6 {
		t.Errorf("single-stack: %+v, %v", sc, err)
	}
}

// TestExternalInterfaceIPv6: a dual-stack node needs an IPv6 address
// on the interface; link-local and loopback ones do not count.
func TestExternalInterfaceIPv6(t *testing.T) {
	lo := loopback(t)
	_, err := externalInterface("", []net.IP{net.ParseIP("127.0.0.1")}, true, true)
	want := "interface " + lo + " has no global or ULA IPv6 address for the dual-stack pod network: add one, or set --flannel-iface"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// cacheBehind is a subnet manager whose informer has not yet seen the
// node's podCIDR for its first misses calls.
type cacheBehind struct {
	subnet.Manager
	misses, calls int
	err           error
}

func (m *cacheBehind) AcquireLease(ctx context.Context, attrs *lease.LeaseAttrs) (*lease.Lease, error) {
	m.calls++
	if m.err != nil {
		return nil, m.err
	}
	if m.calls <= m.misses {
		return nil, errors.New(`node "a" pod cidr not assigned`)
	}
	return &lease.Lease{}, nil
}

// The lease waits out an informer an event behind, and passes any other
// error on at once.
func TestLeaseWhenCached(t *testing.T) {
	behind := &cacheBehind{misses: 3}
	if _, err := (leaseWhenCached{behind}).AcquireLease(context.Background(), &lease.LeaseAttrs{}); err != nil || behind.calls != 4 {
		t.Errorf("lease after 3 misses: err %v after %d calls; want a lease on the 4th", err, behind.calls)
	}
	other := &cacheBehind{err: errors.New("forbidden")}
	if _, err := (leaseWhenCached{other}).AcquireLease(context.Background(), &lease.LeaseAttrs{}); err == nil || other.calls != 1 {
		t.Errorf("other error: err %v after %d calls; want it returned after 1", err, other.calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	never := &cacheBehind{misses: 1 << 30}
	if _, err := (leaseWhenCached{never}).AcquireLease(ctx, &lease.LeaseAttrs{}); err == nil {
		t.Error("a cancelled wait returned a lease")
	}
}

// previousRanges reads back what flannel's subnet file states, so that a
// restart removes only the rules of ranges that changed.
func TestPreviousRanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subnet.env")
	if r := previousRanges(path); !r.network.Empty() || !r.network6.Empty() {
		t.Fatalf("no file: %+v, want nothing", r)
	}
	_, n4, _ := net.ParseCIDR("10.42.0.0/16")
	_, s4, _ := net.ParseCIDR("10.42.3.0/24")
	_, n6, _ := net.ParseCIDR("fd42::/56")
	_, s6, _ := net.ParseCIDR("fd42:0:0:3::/64")
	cfg := &subnet.Config{EnableIPv4: true, EnableIPv6: true, Network: ip.FromIPNet(n4), IPv6Network: ip.FromIP6Net(n6)}
	if err := subnet.WriteSubnetFile(path, cfg, true, ip.FromIPNet(s4), ip.FromIP6Net(s6), 1450); err != nil {
		t.Fatal(err)
	}
	r := previousRanges(path)
	if !r.network.Equal(ip.FromIPNet(n4)) || !r.subnet.Equal(ip.FromIPNet(s4)) {
		t.Errorf("IPv4: %v %v, want %v %v", r.network, r.subnet, n4, s4)
	}
	if !r.network6.Equal(ip.FromIP6Net(n6)) || !r.subnet6.Equal(ip.FromIP6Net(s6)) {
		t.Errorf("IPv6: %v %v, want %v %v", r.network6, r.subnet6, n6, s6)
	}
}
