package join

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/pki"
)

// WriteBundle writes b into dir (created 0700): the CAs, every certificate
// and key, and kubeconfigs for the kubelet, kube-proxy and flannel pointing
// at serverURL, all mode 0600. The names match those of the server's own
// node, so an agent's directory looks the same.
func WriteBundle(dir, serverURL string, b *NodeBundle) (config.NodeCredentials, error) {
	f := func(name string) string { return filepath.Join(dir, name) }
	creds := config.NodeCredentials{
		ServerCAFile:        f("server-ca.crt"),
		ClientCAFile:        f("client-ca.crt"),
		KubeletKubeconfig:   f("kubelet.kubeconfig"),
		KubeProxyKubeconfig: f("kube-proxy.kubeconfig"),
		FlannelKubeconfig:   f("flannel.kubeconfig"),
		ServingCert:         f("serving-kubelet.crt"),
		ServingKey:          f("serving-kubelet.key"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return creds, fmt.Errorf("creating the node certificate directory %s: %w", dir, err)
	}
	type file struct{ path, data string }
	files := []file{
		{creds.ServerCAFile, b.CABundle},
		{creds.ClientCAFile, b.ClientCA},
		{creds.ServingCert, b.Serving.Cert},
		{creds.ServingKey, b.Serving.Key},
	}
	clients := []struct {
		pair          KeyPair
		cert, key, kc string
	}{
		{b.Kubelet, f("client-kubelet.crt"), f("client-kubelet.key"), creds.KubeletKubeconfig},
		{b.KubeProxy, f("client-kube-proxy.crt"), f("client-kube-proxy.key"), creds.KubeProxyKubeconfig},
		{b.Flannel, f("client-flannel.crt"), f("client-flannel.key"), creds.FlannelKubeconfig},
	}
	for _, c := range clients {
		files = append(files, file{c.cert, c.pair.Cert}, file{c.key, c.pair.Key})
	}
	for _, fl := range files {
		if err := writeFile(fl.path, []byte(fl.data)); err != nil {
			return creds, err
		}
	}
	// The kubeconfigs embed the pairs just written.
	for _, c := range clients {
		if err := pki.WriteKubeconfig(c.kc, serverURL, []byte(b.CABundle), c.cert, c.key, 0o600); err != nil {
			return creds, err
		}
	}
	return creds, nil
}

// writeFile replaces path with data, mode 0600, so that a crash never leaves
// half a key behind.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
