package containerd

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Puller pulls images through containerd's CRI image service, the kubelet's
// own path, so that the node's registry configuration (mirrors, TLS) applies.
type Puller struct {
	address string
	conn    *grpc.ClientConn
	images  runtimeapi.ImageServiceClient
}

// NewPuller connects to the containerd socket at address.
func NewPuller(address string) (*Puller, error) {
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &Puller{address: address, conn: conn, images: runtimeapi.NewImageServiceClient(conn)}, nil
}

// Close releases the connection.
func (p *Puller) Close() error { return p.conn.Close() }

// Pull pulls ref and, with pinned, keeps it from the kubelet's image GC. It
// returns the image's full name and its ID.
func (p *Puller) Pull(ctx context.Context, ref string, pinned bool) (name, id string, err error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", "", fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	name = named.String()
	resp, err := p.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}})
	if err != nil {
		return "", "", err
	}
	if pinned {
		if err := Pin(ctx, p.address, name); err != nil {
			return "", "", err
		}
	}
	return name, resp.GetImageRef(), nil
}
