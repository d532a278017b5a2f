package server

import (
	"fmt"
	"os"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/pki"
)

// NodeCredentials issues the credentials of the node that runs inside the
// server, the same set a joining agent receives: one client certificate as
// system:node:<name>, and a kubelet serving certificate from the kubelet CA
// for the node's name and address.
func (s *Server) NodeCredentials(a *config.Agent) (config.NodeCredentials, error) {
	cfg, certs := s.cfg, s.certs
	creds := config.NodeCredentialsIn(cfg.Paths.AgentTLSDir)
	creds.ServerCAFile, creds.ClientCAFile = certs.ServerCA, certs.ClientCA
	if err := os.MkdirAll(cfg.Paths.AgentTLSDir, 0o700); err != nil {
		return config.NodeCredentials{}, err
	}
	now := time.Now()
	clientCA, err := pki.LoadOrCreateCA(certs.ClientCA, certs.ClientCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return config.NodeCredentials{}, err
	}
	kubeletCA, err := pki.LoadOrCreateCA(certs.KubeletCA, certs.KubeletCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return config.NodeCredentials{}, err
	}
	client, serving := pki.NodeSpecs(a.NodeName, a.NodeIPs, cfg.NodeCertValidity)
	renewBefore := config.RenewBefore(cfg.NodeCertValidity)
	if _, err := kubeletCA.EnsureCert(creds.ServingCert, creds.ServingKey, serving, renewBefore, now); err != nil {
		return creds, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	if err := clientCA.EnsureCredential(creds.Credential, client, renewBefore, now); err != nil {
		return creds, fmt.Errorf("node client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(certs.ServerCA)
	if err != nil {
		return creds, err
	}
	if err := pki.WriteKubeconfigForCredential(creds.Kubeconfig, cfg.LocalURL(), caPEM, creds.Credential); err != nil {
		return creds, err
	}
	return creds, nil
}
