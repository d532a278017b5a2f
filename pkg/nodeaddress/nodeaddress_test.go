package nodeaddress

import (
	"context"
	"fmt"
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

func node(annotations map[string]string, tainted bool) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: annotations},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeHostName, Address: "n1"}}},
	}
	if tainted {
		n.Spec.Taints = []corev1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

// TestInstanceMetadata: the addresses come from the node's annotations; a
// tainted node without them waits, an initialized one keeps its own.
func TestInstanceMetadata(t *testing.T) {
	ctx := context.Background()
	md, err := provider{}.InstanceMetadata(ctx, node(map[string]string{
		InternalIPAnnotation: "10.0.0.5", ExternalIPAnnotation: "203.0.113.10,2001:db8::1"}, true))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(md.NodeAddresses); got != "[{InternalIP 10.0.0.5} {ExternalIP 203.0.113.10} {ExternalIP 2001:db8::1}]" {
		t.Errorf("addresses %s", got)
	}
	if md.ProviderID != "kubox://n1" {
		t.Errorf("provider ID %q", md.ProviderID)
	}
	if md, err := (provider{}).InstanceMetadata(ctx, node(nil, true)); md != nil || err != nil {
		t.Errorf("a tainted node without annotations: %v %v; want nil, nil (wait)", md, err)
	}
	md, err = provider{}.InstanceMetadata(ctx, node(nil, false))
	if err != nil || len(md.NodeAddresses) != 2 || md.NodeAddresses[0].Address != "10.0.0.5" {
		t.Errorf("an initialized node without annotations: %v %v; want its own addresses", md, err)
	}
	if _, err := (provider{}).InstanceMetadata(ctx, node(map[string]string{InternalIPAnnotation: "ten"}, true)); err == nil {
		t.Error("a bad address annotation was accepted")
	}
}

// TestAnnotations: no ExternalIP removes the annotation; current compares.
func TestAnnotations(t *testing.T) {
	n := Node{Name: "n1", InternalIPs: []net.IP{net.ParseIP("10.0.0.5")}}
	want := n.Annotations()
	if v, ok := want[ExternalIPAnnotation]; !ok || v != nil {
		t.Errorf("without an ExternalIP the annotation is not removed: %v", want)
	}
	if !current(node(map[string]string{InternalIPAnnotation: "10.0.0.5"}, false), want) {
		t.Error("matching annotations not current")
	}
	if current(node(map[string]string{InternalIPAnnotation: "10.0.0.5", ExternalIPAnnotation: "203.0.113.10"}, false), want) {
		t.Error("a stale ExternalIP annotation counted as current")
	}
	n.ExternalIPs = []net.IP{net.ParseIP("203.0.113.10")}
	if current(node(map[string]string{InternalIPAnnotation: "10.0.0.5"}, false), n.Annotations()) {
		t.Error("a missing ExternalIP annotation counted as current")
	}
}
