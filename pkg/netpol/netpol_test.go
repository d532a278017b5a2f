package netpol

import (
	"context"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestOwnNode: the controller sees only its own Node, whatever other
// names (the host name) it tries first.
func TestOwnNode(t *testing.T) {
	node := func(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	c := ownNode(fake.NewClientset(node("host"), node("edge-1")), "edge-1")
	if _, err := c.CoreV1().Nodes().Get(context.Background(), "host", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("another node: %v, want not found", err)
	}
	if n, err := c.CoreV1().Nodes().Get(context.Background(), "edge-1", metav1.GetOptions{}); err != nil || n.Name != "edge-1" {
		t.Errorf("own node: %v, %v", n, err)
	}
}

// TestKubeRouterConfig: the Service ranges decide the families; the sync
// period has a default.
func TestKubeRouterConfig(t *testing.T) {
	_, v4, _ := net.ParseCIDR("10.43.0.0/16")
	kr := krConfig(Config{NodeName: "edge-1", ServiceCIDRs: []*net.IPNet{v4}, NodePortRange: "30000-32767"})
	if !kr.EnableIPv4 || kr.EnableIPv6 || kr.ClusterIPCIDRs[0] != "10.43.0.0/16" || kr.HostnameOverride != "edge-1" ||
		kr.IPTablesSyncPeriod != DefaultSyncPeriod || kr.MetricsEnabled || kr.NodePortRange != "30000-32767" {
		t.Errorf("IPv4 cluster: %+v", kr)
	}
	_, v6, _ := net.ParseCIDR("fd00:43::/112")
	if kr := krConfig(Config{ServiceCIDRs: []*net.IPNet{v6}}); kr.EnableIPv4 || !kr.EnableIPv6 {
		t.Errorf("IPv6 cluster: v4 %v v6 %v", kr.EnableIPv4, kr.EnableIPv6)
	}
	// Dual-stack: both families, both ranges, primary first.
	kr = krConfig(Config{ServiceCIDRs: []*net.IPNet{v4, v6}})
	if !kr.EnableIPv4 || !kr.EnableIPv6 || len(kr.ClusterIPCIDRs) != 2 || kr.ClusterIPCIDRs[1] != "fd00:43::/112" {
		t.Errorf("dual-stack cluster: %+v", kr)
	}
}

// TestFamilySets: each family's handler keeps only its own policy sets,
// and IPv6 sets carry the names the controller's ip6tables rules use.
func TestFamilySets(t *testing.T) {
	v4, err := newFamilySets(corev1.IPv4Protocol)
	if err != nil {
		t.Skipf("no ipset tool: %v", err)
	}
	v6, err := newFamilySets(corev1.IPv6Protocol)
	if err != nil {
		t.Fatal(err)
	}
	inet := []string{"hash:ip", "family", "inet", "hashsize", "1024", "timeout", "0"}
	inet6 := []string{"hash:ip", "family", "inet6", "hashsize", "1024", "timeout", "0"}
	for _, c := range []struct {
		name       string
		options    []string
		byV4, byV6 bool
	}{
		{"KUBE-SRC-AAAA", inet, true, false},
		{"KUBE-DST-BBBB", inet6, false, true},
		{"inet6:KUBE-SRC-CCCC", inet6, false, true}, // made before the mend: the IPv6 handler cleans it up
		{"inet6:other", inet6, false, false},
		{"KUBE-CLUSTER-IP", inet, false, false},
		{"someone-elses", inet6, false, false},
	} {
		if got := v4.owns(c.name, c.options); got != c.byV4 {
			t.Errorf("IPv4 handler owns %s: %v, want %v", c.name, got, c.byV4)
		}
		if got := v6.owns(c.name, c.options); got != c.byV6 {
			t.Errorf("IPv6 handler owns %s: %v, want %v", c.name, got, c.byV6)
		}
	}

	v6.RefreshSet("KUBE-SRC-DDDD", [][]string{{"fd42::5", "timeout", "0"}}, "hash:ip")
	set := v6.Get("KUBE-SRC-DDDD")
	if set == nil || set.Name != "KUBE-SRC-DDDD" || !isV6(set.Options) {
		t.Fatalf("IPv6 set: %+v, want the name unprefixed and family inet6", set)
	}
	v6.RefreshSet("KUBE-SRC-DDDD", nil, "hash:ip")
	if n := strings.Count(strings.Join(set.Options, " "), "family"); n != 1 {
		t.Errorf("options after a second refresh: %v", set.Options)
	}
	v4.RefreshSet("KUBE-SRC-EEEE", [][]string{{"10.42.0.5", "timeout", "0"}}, "hash:ip")
	if set := v4.Get("KUBE-SRC-EEEE"); set == nil || isV6(set.Options) {
		t.Fatalf("IPv4 set: %+v", set)
	}
}
