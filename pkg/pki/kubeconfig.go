package pki

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// WriteKubeconfig writes a kubeconfig with one cluster, user and context, all
// named "default", pointing at server and trusting caPEM. The client
// certificate and key are embedded rather than referenced, so the file stays
// valid wherever it is copied and cannot pair a renewed certificate with a
// stale key. The file is written atomically with mode; a missing directory is
// created 0700.
func WriteKubeconfig(path, server string, caPEM []byte, certFile, keyFile string, mode os.FileMode) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("reading client certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("reading client key %s: %w", keyFile, err)
	}

	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificateData = certPEM
	user.ClientKeyData = keyPEM
	return writeKubeconfig(path, server, caPEM, user, mode)
}

// writeKubeconfig writes a kubeconfig with one cluster, user and context,
// all named "default".
func writeKubeconfig(path, server string, caPEM []byte, user *clientcmdapi.AuthInfo, mode os.FileMode) error {
	const name = "default"
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = caPEM
	cfg.Clusters[name] = cluster
	cfg.AuthInfos[name] = user
	ctx := clientcmdapi.NewContext()
	ctx.Cluster = name
	ctx.AuthInfo = name
	cfg.Contexts[name] = ctx
	cfg.CurrentContext = name

	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encoding kubeconfig %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating kubeconfig directory %s: %w", dir, err)
	}
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// RefreshKubeconfig puts the current content of certFile and keyFile into
// every user of the kubeconfig at path that embeds a client certificate,
// keeping the rest of the file and its mode.
func RefreshKubeconfig(path, certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	return editKubeconfig(path, func(cfg *clientcmdapi.Config) {
		for _, u := range cfg.AuthInfos {
			if len(u.ClientCertificateData) > 0 {
				u.ClientCertificateData, u.ClientKeyData = certPEM, keyPEM
			}
		}
	})
}

// RefreshKubeconfigCA makes every cluster of the kubeconfig at path that
// embeds its CA trust caPEM instead, keeping the rest of the file and its
// mode.
func RefreshKubeconfigCA(path string, caPEM []byte) error {
	return editKubeconfig(path, func(cfg *clientcmdapi.Config) {
		for _, c := range cfg.Clusters {
			if len(c.CertificateAuthorityData) > 0 {
				c.CertificateAuthorityData = caPEM
			}
		}
	})
}

// editKubeconfig rewrites the kubeconfig at path as edit changes it.
func editKubeconfig(path string, edit func(*clientcmdapi.Config)) error {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	edit(cfg)
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, fi.Mode().Perm())
}
