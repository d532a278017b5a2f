package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// A credential file holds a certificate and its key in one PEM file, so that
// replacing it (one atomic rename) can never pair a new certificate with an
// old key. Clients that load certificate files (client-go with a kubeconfig
// that names files) pick up a replaced file while they run.

// WriteCredential replaces path with certPEM followed by keyPEM, mode 0600.
func WriteCredential(path string, certPEM, keyPEM []byte) error {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("credential %s: %w", path, err)
	}
	data := append(append([]byte{}, certPEM...), keyPEM...)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating credential directory: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("writing credential %s: %w", path, err)
	}
	return nil
}

// ReadCredential loads a credential file and parses its certificate.
func ReadCredential(path string) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(path, path)
	if err != nil {
		return pair, fmt.Errorf("reading credential %s: %w", path, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return pair, fmt.Errorf("reading credential %s: %w", path, err)
		}
	}
	return pair, nil
}

// RenewAt is when cert should be renewed: once two thirds of its life have
// passed, and no later than renewBefore ahead of its expiry. Its life is
// counted from issuance, not from NotBefore, which Sign backdates.
func RenewAt(cert *x509.Certificate, renewBefore time.Duration) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore.Add(clockSkew))
	return cert.NotAfter.Add(-min(life/3, renewBefore))
}

// WriteKubeconfigForCredential writes a kubeconfig like WriteKubeconfig's,
// except that it names the credential file instead of embedding it: the
// client reloads the file when it is replaced, so renewing it needs no
// restart.
func WriteKubeconfigForCredential(path, server string, caPEM []byte, credFile string) error {
	return WriteKubeconfigForFiles(path, server, caPEM, credFile, credFile)
}

// WriteKubeconfigForFiles writes a kubeconfig that names a certificate file
// and its key file, which the client reloads when they are replaced.
func WriteKubeconfigForFiles(path, server string, caPEM []byte, certFile, keyFile string) error {
	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificate = certFile
	user.ClientKey = keyFile
	return writeKubeconfig(path, server, caPEM, user, 0o600)
}

// EnsureCredential is EnsureCert for a credential file: the pair at path is
// kept while it is good for spec, and replaced in one rename otherwise.
func (ca *CA) EnsureCredential(path string, spec CertSpec, renewBefore time.Duration, now time.Time) error {
	a, err := ca.checkCert(path, path, spec, renewBefore, now)
	if err != nil || a.verb == "" {
		return err
	}
	certPEM, keyPEM, err := ca.Sign(spec, now)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", path, err)
	}
	return WriteCredential(path, certPEM, keyPEM)
}

// NodeSpecs are a node's two certificates: its client certificate as
// system:node:<name> in group system:nodes (from the client CA), and its
// kubelet's serving certificate for its name and addresses only (from the
// kubelet CA). The server's own node and every joining node get these.
func NodeSpecs(name string, ips []net.IP, validity time.Duration) (client, serving CertSpec) {
	client = CertSpec{CommonName: NodeUserPrefix + name, Organization: []string{NodesGroup}, Client: true, Validity: validity}
	serving = CertSpec{CommonName: name, Server: true, SANs: SANs{DNSNames: []string{name}, IPs: ips}, Validity: validity}
	return client, serving
}

// A node's identity is the Kubernetes one, so that the Node authorizer and
// NodeRestriction confine it to its own Node.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)
