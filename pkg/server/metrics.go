package server

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/metricsserver"
	"github.com/kubox-io/kubox/pkg/pki"
)

// MetricsServerUser is the identity of the embedded metrics-server, bound
// to its roles by the metrics-server add-on manifest.
const MetricsServerUser = "system:kubox-metrics-server"

// metricsServer issues the embedded metrics-server's client and serving
// certificates and returns it as a component. The API server reaches it
// through the APIService in manifests/metrics-server.yaml, at the address
// and port rendered there.
func (s *Server) metricsServer(caPEM []byte, log *logging.Logger) (component.Component, error) {
	cfg, certs, p := s.cfg, s.certs, s.cfg.Paths
	now := time.Now()
	clientCA, serverCA, err := s.signers(now)
	if err != nil {
		return nil, err
	}
	f := func(name string) string { return filepath.Join(p.TLSDir, name) }
	clientCert, clientKey := f("client-metrics-server.crt"), f("client-metrics-server.key")
	if _, err := clientCA.EnsureCert(clientCert, clientKey, pki.CertSpec{CommonName: MetricsServerUser, Client: true}, config.CertRenewBefore, now); err != nil {
		return nil, err
	}
	servingCert, servingKey := f("serving-metrics-server.crt"), f("serving-metrics-server.key")
	spec := pki.CertSpec{CommonName: "metrics-server", Server: true, SANs: pki.SANs{
		DNSNames: []string{"metrics-server.kube-system.svc", "metrics-server.kube-system.svc." + cfg.ClusterDomain},
		IPs:      []net.IP{cfg.AdvertiseAddress},
	}}
	if _, err := serverCA.EnsureCert(servingCert, servingKey, spec, config.CertRenewBefore, now); err != nil {
		return nil, err
	}
	kc := filepath.Join(p.CredDir, "metrics-server.kubeconfig")
	if err := pki.WriteKubeconfig(kc, cfg.LocalURL(), caPEM, clientCert, clientKey, 0o600); err != nil {
		return nil, err
	}
	ms := metricsserver.Config{
		Kubeconfig:    kc,
		BindAddress:   cfg.AdvertiseAddress,
		Port:          config.MetricsServerPort,
		ServingCert:   servingCert,
		ServingKey:    servingKey,
		KubeletCAFile: certs.KubeletCA,
		Resolution:    15 * time.Second,
		Log:           log.For("metrics-server"),
	}
	return &component.Func{ComponentName: "metrics-server", Run: func(ctx context.Context) error { return metricsserver.Run(ctx, ms) }}, nil
}

// caBundle is a PEM file's content as an APIService caBundle.
func caBundle(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

// signers loads the client and server CAs, for credentials the server
// issues while it runs.
func (s *Server) signers(now time.Time) (clientCA, serverCA *pki.CA, err error) {
	certs := s.certs
	if clientCA, err = pki.LoadOrCreateCA(certs.ClientCA, certs.ClientCAKey, "", config.CertRenewBefore, now); err != nil {
		return nil, nil, err
	}
	if serverCA, err = pki.LoadOrCreateCA(certs.ServerCA, certs.ServerCAKey, "", config.CertRenewBefore, now); err != nil {
		return nil, nil, err
	}
	return clientCA, serverCA, nil
}
