package join

import (
	"context"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServerJoinRoute: only the server token gets the cluster's files, over
// TLS pinned by the token's CA hash, and only from a server others can join.
func TestServerJoinRoute(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := JoinServer(ctx, ts.url, ts.token(), 5*time.Second); err == nil || !strings.Contains(err.Error(), "--cluster-init") {
		t.Fatalf("a server without an etcd member: %v", err)
	}
	ts.srv.cfg.ServerBundle = func() (*ServerBundle, error) {
		return &ServerBundle{Files: map[string]string{"token": "the token"}, Cluster: ts.cluster}, nil
	}
	b, err := JoinServer(ctx, ts.url, ts.token(), 5*time.Second)
	if err != nil || b.Files["token"] != "the token" || b.Cluster.ClusterCIDR != ts.cluster.ClusterCIDR {
		t.Fatalf("with the server token: %+v, %v", b, err)
	}
	for name, c := range map[string]struct{ token, want string }{
		"wrong secret":    {FullToken(strings.Repeat("ab", 32), ts.caBundle), "does not know the token"},
		"no CA hash":      {ts.secret, "full server token"},
		"bootstrap token": {FullToken("abcdef.0123456789abcdef", ts.caBundle), "not a bootstrap token"},
	} {
		if _, err := JoinServer(ctx, ts.url, c.token, 5*time.Second); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// TestNodeGetsEveryServer: a node's balancer learns every API server the
// kubernetes Service names, beside the one it joined.
func TestNodeGetsEveryServer(t *testing.T) {
	ts := newTestServer(t)
	port := int32(6443)
	_, err := ts.client.DiscoveryV1().EndpointSlices("default").Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"}}},
		Ports:       []discoveryv1.EndpointPort{{Port: &port}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Join(context.Background(), ts.url, ts.token(), nodeRequest("node-1", "pw"), JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Cluster.ServerURLs, " "); got != "https://10.0.0.1:6443 https://10.0.0.2:6443" {
		t.Errorf("servers %q", got)
	}
}
