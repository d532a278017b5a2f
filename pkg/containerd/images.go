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

// pinnedLabel, set to "pinned", makes the CRI plugin report an image as
// pinned, and the kubelet's image GC never removes a pinned image.
const pinnedLabel = "io.cri-containerd.pinned"

// snapshotter is the one containerd's CRI plugin unpacks images for.
const snapshotter = "overlayfs"

// ImportOptions says how an archive is imported.
type ImportOptions struct {
	// Pinned keeps the images from the kubelet's image GC.
	Pinned bool
	// Done, if set, is called with each image's name once it is unpacked.
	Done func(name string)
}

// Import loads an image archive (OCI layout or docker-archive, optionally
// compressed with gzip or zstd as containerd detects) into the k8s.io
// namespace and unpacks it for the CRI snapshotter. It returns the names of
// the images it imported.
func Import(ctx context.Context, address string, r io.Reader, o ImportOptions) ([]string, error) {
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
	var names []string
	for _, img := range imgs {
		if o.Pinned {
			if err := pin(ctx, c, img.Name); err != nil {
				return nil, err
			}
		}
		if err := client.NewImage(c, img).Unpack(ctx, snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", img.Name, err)
		}
		if o.Done != nil {
			o.Done(img.Name)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// Pin labels the image named name (a full reference, as containerd names
// images) pinned; the CRI plugin sees the update at once.
func Pin(ctx context.Context, address, name string) error {
	c, err := client.New(address, client.WithDefaultNamespace(Namespace))
	if err != nil {
		return err
	}
	defer c.Close()
	return pin(namespaces.WithNamespace(ctx, Namespace), c, name)
}

func pin(ctx context.Context, c *client.Client, name string) error {
	img, err := c.ImageService().Get(ctx, name)
	if err != nil {
		return fmt.Errorf("pinning %s: %w", name, err)
	}
	if img.Labels[pinnedLabel] == "pinned" {
		return nil
	}
	if img.Labels == nil {
		img.Labels = map[string]string{}
	}
	img.Labels[pinnedLabel] = "pinned"
	if _, err := c.ImageService().Update(ctx, img, "labels."+pinnedLabel); err != nil {
		return fmt.Errorf("pinning %s: %w", name, err)
	}
	return nil
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
