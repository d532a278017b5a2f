// Package flannel runs the pod network of a node: flannel's overlay between
// nodes (with the Kubernetes subnet manager, so each node's range is its
// podCIDR) and the CNI configuration containerd uses for pods.
package flannel

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// ConflistName is the CNI configuration file kubox owns.
const ConflistName = "10-kubox.conflist"

// BridgeName is the Linux bridge pods attach to on every node.
const BridgeName = "cni0"

// WriteConflist writes the CNI configuration for pods of this node: a
// bridge with host-local addresses from podCIDRs (one range per family of
// a dual-stack cluster, so each pod gets an address of each, the first
// family's first), plus port mappings and bandwidth limits; pod address
// reservations live in ipamDir. mtu is the overlay's (0 leaves the
// default). Writes are atomic, because containerd watches the directory.
func WriteConflist(dir, ipamDir string, podCIDRs []*net.IPNet, mtu int) error {
	ranges := make([][]map[string]string, len(podCIDRs))
	for i, n := range podCIDRs {
		ranges[i] = []map[string]string{{"subnet": n.String()}}
	}
	bridge := map[string]any{
		"type":             "bridge",
		"bridge":           BridgeName,
		"isDefaultGateway": true,
		"ipMasq":           false, // flannel masquerades what leaves the cluster
		"hairpinMode":      true,
		"forceAddress":     true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  ranges,
			"dataDir": ipamDir,
		},
	}
	if mtu > 0 {
		bridge["mtu"] = mtu
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kubox",
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
			map[string]any{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, ConflistName), data, 0o644); err != nil {
		return fmt.Errorf("writing CNI configuration: %w", err)
	}
	return nil
}
