package join

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubox-io/kubox/pkg/atomicfile"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/pki"
)

// legacyFiles are credentials of earlier versions: separate kube-proxy and
// flannel identities, and kubeconfigs that embedded their certificates.
var legacyFiles = []string{
	"kubelet.kubeconfig", "kube-proxy.kubeconfig", "flannel.kubeconfig",
	"client-kubelet.crt", "client-kubelet.key", "client-kube-proxy.crt", "client-kube-proxy.key",
	"client-flannel.crt", "client-flannel.key",
}

// WriteBundle writes b into dir (created 0700): the CAs, the node's
// credential, the kubelet's serving pair and a kubeconfig naming the
// credential and pointing at serverURL, all mode 0600. Each file is
// replaced atomically, so components that reload them while running never
// see half of one. The names match those of the server's own node.
func WriteBundle(dir, serverURL string, b *NodeBundle) (config.NodeCredentials, error) {
	creds := config.NodeCredentialsIn(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return creds, fmt.Errorf("creating the node certificate directory %s: %w", dir, err)
	}
	// The serving key goes first: the kubelet reloads the pair when the
	// certificate changes, and a new certificate must find its key there.
	for _, fl := range []struct{ path, data string }{
		{creds.ServerCAFile, b.CABundle},
		{creds.ClientCAFile, b.ClientCA},
		{creds.ServingKey, b.Serving.Key},
		{creds.ServingCert, b.Serving.Cert},
	} {
		if err := writeFile(fl.path, []byte(fl.data)); err != nil {
			return creds, err
		}
	}
	if err := pki.WriteCredential(creds.Credential, []byte(b.Node.Cert), []byte(b.Node.Key)); err != nil {
		return creds, err
	}
	if err := pki.WriteKubeconfigForCredential(creds.Kubeconfig, serverURL, []byte(b.CABundle), creds.Credential); err != nil {
		return creds, err
	}
	for _, name := range legacyFiles {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return creds, fmt.Errorf("removing an old credential: %w", err)
		}
	}
	return creds, nil
}

// writeFile replaces path with data, mode 0600, so that a crash never leaves
// half a key behind.
func writeFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
