package addons

import (
	"context"
	"net"
	"path/filepath"
	"time"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/dnscustom"
	"github.com/kubox-io/kubox/pkg/helmcontroller"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/leader"
	"github.com/kubox-io/kubox/pkg/metricsserver"
	"github.com/kubox-io/kubox/pkg/pki"
)

// MetricsServerUser is the identity of the embedded metrics-server, bound
// to its roles by the metrics-server add-on manifest.
const MetricsServerUser = "system:kubox-metrics-server"

// corednsCustom rolls CoreDNS when its coredns-custom ConfigMap changes.
func corednsCustom(env ServerEnv) ([]component.Component, error) {
	return []component.Component{restartable(&component.Func{ComponentName: "coredns-custom", Run: func(ctx context.Context) error {
		client, err := kubeclient.New(env.Config.Paths.AdminKubeconfig)
		if err != nil {
			return err
		}
		return dnscustom.Run(ctx, client, env.Log.For("coredns-custom"))
	}}, env.Log)}, nil
}

// metricsServer issues the embedded metrics-server's client and serving
// certificates and runs it. The API server reaches it through the
// APIService in manifests/metrics-server.yaml, at the address and port
// rendered there. It is not restarted on failure: upstream registers its
// metrics once per process.
func metricsServer(env ServerEnv) ([]component.Component, error) {
	cfg, certs, p := env.Config, env.Certs, env.Config.Paths
	now := time.Now()
	clientCA, err := pki.LoadOrCreateCA(certs.ClientCA, certs.ClientCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return nil, err
	}
	serverCA, err := pki.LoadOrCreateCA(certs.ServerCA, certs.ServerCAKey, "", config.CertRenewBefore, now)
	if err != nil {
		return nil, err
	}
	f := func(name string) string { return filepath.Join(p.TLSDir, name) }
	clientCert, clientKey := f("client-metrics-server.crt"), f("client-metrics-server.key")
	renewBefore := config.RenewBefore(cfg.CertValidity)
	if _, err := clientCA.EnsureCert(clientCert, clientKey, pki.CertSpec{CommonName: MetricsServerUser, Client: true, Validity: cfg.CertValidity}, renewBefore, now); err != nil {
		return nil, err
	}
	servingCert, servingKey := f("serving-metrics-server.crt"), f("serving-metrics-server.key")
	spec := pki.CertSpec{CommonName: "metrics-server", Server: true, SANs: pki.SANs{
		DNSNames: []string{"metrics-server.kube-system.svc", "metrics-server.kube-system.svc." + cfg.ClusterDomain},
		IPs:      []net.IP{cfg.AdvertiseAddress},
	}}
	spec.Validity = cfg.CertValidity
	if _, err := serverCA.EnsureCert(servingCert, servingKey, spec, renewBefore, now); err != nil {
		return nil, err
	}
	kc := filepath.Join(p.CredDir, "metrics-server.kubeconfig")
	if err := pki.WriteKubeconfigForFiles(kc, cfg.LocalURL(), env.CAPEM, clientCert, clientKey); err != nil {
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
		Log:           env.Log.For("metrics-server"),
	}
	return []component.Component{&component.Func{ComponentName: "metrics-server", Run: func(ctx context.Context) error { return metricsserver.Run(ctx, ms) }}}, nil
}

// helmController installs the releases HelmCharts ask for. Of several
// servers sharing a datastore, the one holding the lease acts.
func helmController(env ServerEnv) ([]component.Component, error) {
	p := env.Config.Paths
	return []component.Component{restartable(&component.Func{ComponentName: "helm-controller", Run: func(ctx context.Context) error {
		return helmcontroller.Run(ctx, helmcontroller.Config{
			Kubeconfig: p.AdminKubeconfig,
			HelmDir:    p.HelmDir,
			Election:   leader.Election{Enabled: env.LeaderElect != nil && env.LeaderElect(), Kubeconfig: p.AdminKubeconfig},
			Log:        env.Log.For("helm-controller"),
		})
	}}, env.Log)}, nil
}
