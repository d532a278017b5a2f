package server

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestMarkNode: the server's marks are added to its node once it exists,
// leaving the kubelet's own labels, and not patched again when present.
func TestMarkNode(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	labels := map[string]string{roleControlPlane: "true"}
	annotations := map[string]string{"etcd.kubox.io/member-name": "m1"}
	if found, _, err := markNode(ctx, client, "n1", labels, annotations); found || err != nil {
		t.Fatalf("no node yet: found %v, %v", found, err)
	}
	client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/os": "linux"}}}, metav1.CreateOptions{})
	if found, marked, err := markNode(ctx, client, "n1", labels, annotations); !found || !marked || err != nil {
		t.Fatalf("first mark: %v %v %v", found, marked, err)
	}
	n, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if n.Labels[roleControlPlane] != "true" || n.Labels["kubernetes.io/os"] != "linux" || n.Annotations["etcd.kubox.io/member-name"] != "m1" {
		t.Errorf("node after marking: %v %v", n.Labels, n.Annotations)
	}
	if _, marked, err := markNode(ctx, client, "n1", labels, annotations); marked || err != nil {
		t.Errorf("second mark changed the node: %v %v", marked, err)
	}
}
