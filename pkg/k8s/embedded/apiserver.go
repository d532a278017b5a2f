package embedded

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	encryptioncontroller "k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/kubox-io/kubox/pkg/component"
)

// APIServerConfig configures the embedded kube-apiserver.
type APIServerConfig struct {
	Args []string
	// Listener is the API port, opened by the caller so that a port in use
	// is reported before anything else starts.
	Listener net.Listener
	// ReadyURL, CAFile, CertFile and KeyFile let Ready poll /readyz as the
	// admin.
	ReadyURL                  string
	CAFile, CertFile, KeyFile string
	// WrapHandler, if set, goes around the whole API handler chain: it
	// serves kubox's own routes on the API port (the join endpoint) and
	// passes everything else on. Requests it serves skip the API's
	// authentication, so it must do its own.
	WrapHandler func(http.Handler) http.Handler
}

// NewAPIServer returns kube-apiserver as a component.
func NewAPIServer(cfg APIServerConfig) (component.Component, error) {
	s := options.NewServerRunOptions()
	if err := parseFlags("kube-apiserver", s.Flags(), cfg.Args); err != nil {
		return nil, err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	s.SecureServing.Listener = cfg.Listener
	// A key rotation (kubox secrets-encrypt rotate-keys) waits for the API
	// server to load the new configuration; upstream looks once a minute.
	// Process-wide, and only the API server reads it.
	encryptioncontroller.EncryptionConfigFileChangePollDuration = 10 * time.Second
	// kubox's loopback clients need not log the apiserver's own warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	routeEtcdClientLog()

	readyClient, err := adminClient(cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	return &component.Func{
		ComponentName: "apiserver",
		Run: func(ctx context.Context) error {
			ctx = klog.NewContext(ctx, klog.Background().WithName("apiserver"))
			completed, err := s.Complete(ctx)
			if err != nil {
				return err
			}
			if errs := completed.Validate(); len(errs) != 0 {
				return utilerrors.NewAggregate(errs)
			}
			if cfg.WrapHandler == nil {
				return app.Run(ctx, completed)
			}
			return runWrapped(ctx, completed, cfg.WrapHandler)
		},
		ReadyCheck: func(ctx context.Context) error {
			return getOK(ctx, readyClient, cfg.ReadyURL)
		},
		// The embedded kubelet cannot be stopped in-process, so its watches
		// keep the API server draining until the process exits: waiting
		// longer than the in-flight writes need only delays a restart
		// (kine still drains its own requests after this).
		StopWait: time.Second,
	}, nil
}

func adminClient(caFile, certFile, keyFile string) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", certFile, err)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
			DisableKeepAlives: true,
		},
	}, nil
}

func getOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}

// runWrapped is app.Run with wrap around the outermost (aggregator) handler
// chain.
func runWrapped(ctx context.Context, opts options.CompletedOptions, wrap func(http.Handler) http.Handler) error {
	if opts.InformerName == nil {
		name, err := informerName("kube-apiserver")
		if err != nil {
			return err
		}
		opts.InformerName = name
	}
	config, err := app.NewConfig(opts)
	if err != nil {
		return err
	}
	generic := &config.Aggregator.GenericConfig.Config
	build := generic.BuildHandlerChainFunc
	generic.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return wrap(build(h, c))
	}
	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := app.CreateServerChain(completed)
	if err != nil {
		return err
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}
