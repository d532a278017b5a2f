package netpol

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// ownNode is a client on which only the named Node exists. The controller
// finds its Node by $NODE_NAME, then by the host name, and only then by the
// name kubox gives it; several nodes of one host (tests, network
// namespaces) share the host name, and $NODE_NAME is process-wide, so every
// other name must miss.
func ownNode(c kubernetes.Interface, name string) kubernetes.Interface {
	return nodeClient{Interface: c, name: name}
}

type nodeClient struct {
	kubernetes.Interface
	name string
}

func (c nodeClient) CoreV1() typedcorev1.CoreV1Interface {
	return coreClient{CoreV1Interface: c.Interface.CoreV1(), name: c.name}
}

type coreClient struct {
	typedcorev1.CoreV1Interface
	name string
}

func (c coreClient) Nodes() typedcorev1.NodeInterface {
	return nodeGetter{NodeInterface: c.CoreV1Interface.Nodes(), name: c.name}
}

type nodeGetter struct {
	typedcorev1.NodeInterface
	name string
}

func (n nodeGetter) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Node, error) {
	if name != n.name {
		return nil, apierrors.NewNotFound(corev1.Resource("nodes"), name)
	}
	return n.NodeInterface.Get(ctx, name, opts)
}
