package server

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// joinToken makes sure the token file holds the full token, which pins the
// server CA (K1<hash>::<secret>), and returns its secret. A file with the
// bare secret (or a stale hash, after the CA changed) is rewritten; the
// secret itself never changes, so nodes that joined keep working.
func joinToken(path string, caPEM []byte) (string, error) {
	content, err := pki.EnsureToken(path)
	if err != nil {
		return "", err
	}
	t, err := join.ParseToken(content)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if full := join.FullToken(t.Secret, caPEM); full != content {
		if err := pki.WriteToken(path, full); err != nil {
			return "", err
		}
	}
	return t.Secret, nil
}

// joinHandler serves the join routes (/v1-kubox/) in front of the API.
// The names and addresses the API answers to, and the server's own node
// name, are reserved: no node can get a certificate for them.
func (s *Server) joinHandler(secret string, caPEM []byte, apiSANs pki.SANs, log *logging.Logger) (func(http.Handler) http.Handler, error) {
	cfg, certs := s.cfg, s.certs
	now := time.Now()
	clientCA, err := pki.LoadOrCreateCA(certs.ClientCA, certs.ClientCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return nil, err
	}
	kubeletCA, err := pki.LoadOrCreateCA(certs.KubeletCA, certs.KubeletCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return nil, err
	}
	client, err := kubeclient.New(cfg.Paths.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	reserved := append([]string{}, apiSANs.DNSNames...)
	if cfg.NodeName != "" {
		reserved = append(reserved, cfg.NodeName)
	}
	var serverBundle func() (*join.ServerBundle, error)
	if cfg.Datastore.Etcd != nil {
		serverBundle = s.serverBundle
	}
	js, err := join.NewServer(join.ServerConfig{
		CABundle:      caPEM,
		ClientCA:      clientCA,
		KubeletCA:     kubeletCA,
		Secret:        secret,
		Client:        client,
		ReservedNames: reserved,
		ReservedIPs:   append([]net.IP{cfg.APIServiceIP(), cfg.AdvertiseAddress, cfg.BindAddress}, apiSANs.IPs...),
		CertValidity:  cfg.NodeCertValidity,
		Cluster:       cfg.Cluster(),
		Log:           log.For("join"),
		ServerBundle:  serverBundle,
		Ready:         s.policiesReady,
	})
	if err != nil {
		return nil, err
	}
	return js.Wrap, nil
}
