package agent

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// waitPodCIDRs returns once the node has a podCIDR per family, seen through
// its watch: not while the node is missing or has one range of two.
func TestWaitPodCIDRs(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		cidrs []string
		err   error
	}
	got := make(chan result, 1)
	go func() {
		cidrs, err := waitPodCIDRs(ctx, client, "n1", 2)
		var s []string
		for _, c := range cidrs {
			s = append(s, c.String())
		}
		got <- result{s, err}
	}()
	early := func(step string) {
		select {
		case r := <-got:
			t.Fatalf("%s: returned %v, %v before the node had both ranges", step, r.cidrs, r.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	early("no node")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.42.1.0/24"}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another node's ranges are not this one's.
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.42.2.0/24", "fd42:0:0:2::/64"}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	early("one range of two")
	node.Spec.PodCIDRs = append(node.Spec.PodCIDRs, "fd42:0:0:1::/64")
	if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || len(r.cidrs) != 2 || r.cidrs[0] != "10.42.1.0/24" || r.cidrs[1] != "fd42:0:0:1::/64" {
		t.Fatalf("waitPodCIDRs = %v, %v; want [10.42.1.0/24 fd42:0:0:1::/64]", r.cidrs, r.err)
	}
}
