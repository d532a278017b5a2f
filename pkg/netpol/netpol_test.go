package netpol

import (
	"context"
	"net"
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
