package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/pki"
)

// NodeCredentials issues the certificates and kubeconfigs of the node that
// runs inside the server, the same set a joining agent receives.
func (s *Server) NodeCredentials(a *config.Agent) (config.NodeCredentials, error) {
	cfg, certs := s.cfg, s.certs
	p := cfg.Paths
	dir := p.AgentTLSDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return config.NodeCredentials{}, err
	}
	now := time.Now()
	clientCA, err := pki.LoadOrCreateCA(certs.ClientCA, certs.ClientCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return config.NodeCredentials{}, err
	}
	serverCA, err := pki.LoadOrCreateCA(certs.ServerCA, certs.ServerCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return config.NodeCredentials{}, err
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	creds := config.NodeCredentials{
		ServerCAFile:        certs.ServerCA,
		ClientCAFile:        certs.ClientCA,
		KubeletKubeconfig:   f("kubelet.kubeconfig"),
		KubeProxyKubeconfig: f("kube-proxy.kubeconfig"),
		FlannelKubeconfig:   f("flannel.kubeconfig"),
		ServingCert:         f("serving-kubelet.crt"),
		ServingKey:          f("serving-kubelet.key"),
	}
	host, _ := os.Hostname()
	serving := pki.CertSpec{
		CommonName: a.NodeName, Server: true,
		SANs: pki.SANs{DNSNames: []string{a.NodeName, host, "localhost"}, IPs: []net.IP{a.NodeIP, net.IPv4(127, 0, 0, 1)}},
	}
	if _, err := serverCA.EnsureCert(creds.ServingCert, creds.ServingKey, serving, config.CertRenewBefore, now); err != nil {
		return creds, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	clients := []struct {
		spec      pki.CertSpec
		cert, key string
		kc        string
	}{
		{pki.CertSpec{CommonName: "system:node:" + a.NodeName, Organization: []string{"system:nodes"}, Client: true},
			f("client-kubelet.crt"), f("client-kubelet.key"), creds.KubeletKubeconfig},
		{pki.CertSpec{CommonName: "system:kube-proxy", Client: true},
			f("client-kube-proxy.crt"), f("client-kube-proxy.key"), creds.KubeProxyKubeconfig},
		{pki.CertSpec{CommonName: FlannelUser, Client: true},
			f("client-flannel.crt"), f("client-flannel.key"), creds.FlannelKubeconfig},
	}
	for _, c := range clients {
		if _, err := clientCA.EnsureCert(c.cert, c.key, c.spec, config.CertRenewBefore, now); err != nil {
			return creds, fmt.Errorf("%s certificate: %w", c.spec.CommonName, err)
		}
		if err := pki.WriteKubeconfig(c.kc, cfg.LocalURL(), serverCA.CertPEM, c.cert, c.key, 0o600); err != nil {
			return creds, err
		}
	}
	return creds, nil
}
