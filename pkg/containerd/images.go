package containerd

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Namespace is the containerd namespace the kubelet's images live in.
const Namespace = "k8s.io"

// pinnedLabel keeps the CRI plugin's image GC away from system images.
const pinnedLabel = "io.cri-containerd.pinned"

// Import loads an image archive (OCI layout or docker-archive, optionally
// compressed with gzip or zstd as containerd detects) into the k8s.io
// namespace and unpacks it for the CRI snapshotter. It returns the names of
// the images it imported.
func Import(ctx context.Context, address, snapshotter string, r io.Reader, pinned bool) ([]string, error) {
	c, err := client.New(address, client.WithDefaultNamespace(Namespace))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, Namespace)
	imgs, err := c.Import(ctx, r, client.WithAllPlatforms(false), client.WithSkipMissing())
	if err != nil {
		return nil, err
	}
	if snapshotter == "" {
		snapshotter = "overlayfs"
	}
	var names []string
	for _, img := range imgs {
		if pinned {
			if img.Labels == nil {
				img.Labels = map[string]string{}
			}
			img.Labels[pinnedLabel] = "pinned"
			if _, err := c.ImageService().Update(ctx, img, "labels."+pinnedLabel); err != nil {
				return nil, fmt.Errorf("pinning %s: %w", img.Name, err)
			}
		}
		if err := client.NewImage(c, img).Unpack(ctx, snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", img.Name, err)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// HasImage tells whether ref is already in the k8s.io namespace, so that
// system images are imported once per version, not at every start.
func HasImage(ctx context.Context, address, ref string) bool {
	c, err := client.New(address, client.WithDefaultNamespace(Namespace))
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.ImageService().Get(namespaces.WithNamespace(ctx, Namespace), ref)
	return err == nil
}
