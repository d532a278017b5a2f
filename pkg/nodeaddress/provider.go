// Package nodeaddress puts each node's addresses, ExternalIPs among them,
// into its Node's status.addresses. The kubelet cannot set an ExternalIP,
// and it rewrites status.addresses itself unless a cloud provider owns
// them; so every kubelet runs with --cloud-provider=external, each node
// states its addresses in annotations on its Node (Announce), and the
// server runs upstream's cloud node controller (k8s.io/cloud-provider)
// with a provider whose one source is those annotations (Controller). The
// controller also lifts the taint the kubelet registers a node with until
// its addresses are set. This package is the only importer of
// k8s.io/cloud-provider.
package nodeaddress

import (
	"context"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

// The annotations a node states its addresses in: comma-separated IPs.
const (
	InternalIPAnnotation = "kubox.io/internal-ip"
	ExternalIPAnnotation = "kubox.io/external-ip"
)

// providerName prefixes the provider IDs the controller gives nodes.
const providerName = "kubox"

// provider is a cloud provider that knows nothing but what each node says
// about itself.
type provider struct{}

var (
	_ cloudprovider.Interface   = provider{}
	_ cloudprovider.InstancesV2 = provider{}
)

func (provider) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}
func (provider) LoadBalancer() (cloudprovider.LoadBalancer, bool)                  { return nil, false }
func (provider) Instances() (cloudprovider.Instances, bool)                        { return nil, false }
func (p provider) InstancesV2() (cloudprovider.InstancesV2, bool)                  { return p, true }
func (provider) Zones() (cloudprovider.Zones, bool)                                { return nil, false }
func (provider) Clusters() (cloudprovider.Clusters, bool)                          { return nil, false }
func (provider) Routes() (cloudprovider.Routes, bool)                              { return nil, false }
func (provider) ProviderName() string                                              { return providerName }
func (provider) HasClusterID() bool                                                { return false }

// InstanceExists: a node is its own machine; only the node lifecycle
// controller, which kubox does not run, would ask.
func (provider) InstanceExists(context.Context, *corev1.Node) (bool, error) { return true, nil }

// InstanceShutdown: never known here.
func (provider) InstanceShutdown(context.Context, *corev1.Node) (bool, error) { return false, nil }

// InstanceMetadata returns the addresses the node states. A node that has
// not stated them yet gets none: while it is still tainted, nil tells the
// controller to wait (the annotation's arrival queues the node again); once
// initialized (a node of an earlier kubox), it keeps the addresses it has.
func (provider) InstanceMetadata(_ context.Context, node *corev1.Node) (*cloudprovider.InstanceMetadata, error) {
	internal, ok := node.Annotations[InternalIPAnnotation]
	if !ok {
		if tainted(node) {
			return nil, nil
		}
		return &cloudprovider.InstanceMetadata{ProviderID: providerID(node), NodeAddresses: node.Status.Addresses}, nil
	}
	var addrs []corev1.NodeAddress
	for _, a := range []struct {
		typ   corev1.NodeAddressType
		value string
	}{{corev1.NodeInternalIP, internal}, {corev1.NodeExternalIP, node.Annotations[ExternalIPAnnotation]}} {
		ips, err := parseIPs(a.value)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", node.Name, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, corev1.NodeAddress{Type: a.typ, Address: ip.String()})
		}
	}
	// The kubelet's Hostname address is kept by the controller.
	return &cloudprovider.InstanceMetadata{ProviderID: providerID(node), NodeAddresses: addrs}, nil
}

// providerID is the node's own, or kubox://<node name>: the controller
// requires one.
func providerID(node *corev1.Node) string {
	if node.Spec.ProviderID != "" {
		return node.Spec.ProviderID
	}
	return providerName + "://" + node.Name
}

func tainted(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == cloudproviderapi.TaintExternalCloudProvider {
			return true
		}
	}
	return false
}

// parseIPs reads an annotation's comma-separated addresses.
func parseIPs(v string) ([]net.IP, error) {
	var ips []net.IP
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		ip := net.ParseIP(f)
		if ip == nil {
			return nil, fmt.Errorf("invalid address %q in its address annotations", f)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// joinIPs writes addresses as an annotation's value.
func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}
