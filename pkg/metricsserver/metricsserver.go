// Package metricsserver runs the upstream metrics-server
// (sigs.k8s.io/metrics-server) inside kubox, so that `kubectl top` works
// with no pod and no image: it scrapes every kubelet's resource metrics and
// serves the metrics.k8s.io API, which the API server aggregates through the
// APIService the metrics-server add-on manifest declares.
package metricsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"sigs.k8s.io/metrics-server/cmd/metrics-server/app/options"
)

// Logger is where the component reports what it does.
type Logger interface {
	Infof(string, ...any)
	Errorf(string, ...any)
}

// Config is what the metrics-server needs: its identity towards the API
// server and the kubelets, the certificate it serves with, and where.
type Config struct {
	Kubeconfig    string // client identity for the API and the kubelets
	BindAddress   net.IP
	Port          int
	ServingCert   string
	ServingKey    string
	KubeletCAFile string // verifies the kubelets' serving certificates
	Resolution    time.Duration
	Log           Logger
}

// Run serves the metrics API until ctx ends. The add-on's RBAC comes from a
// manifest that may not be applied yet when kubox starts, so setting up is
// retried until it succeeds.
func Run(ctx context.Context, cfg Config) error {
	addr := net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("metrics-server: port %d is already in use (%s): stop the process using it or start kubox with --disable metrics-server", cfg.Port, addr)
		}
		return fmt.Errorf("metrics-server: cannot listen on %s: %w", addr, err)
	}
	// The listener is opened once and handed to every attempt: a failed
	// attempt must not leave the port half-bound.
	defer ln.Close()
	// On a first start the attempts before the add-on manifest grants
	// metrics-server its roles fail (forbidden); the manifest lands within
	// a second, and until metrics-server serves, its APIService stalls
	// every client's discovery (the controller-manager's start among them),
	// so retry soon at first.
	delay := 200 * time.Millisecond
	for {
		err := serve(ctx, cfg, ln)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		cfg.Log.Errorf("%v (retrying in %s)", err, delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 3*time.Second)
	}
}

func serve(ctx context.Context, cfg Config, ln net.Listener) error {
	o := options.NewOptions()
	o.Kubeconfig = cfg.Kubeconfig
	if cfg.Resolution > 0 {
		o.MetricResolution = cfg.Resolution
	}
	o.SecureServing.Listener = ln
	o.SecureServing.BindAddress = cfg.BindAddress
	o.SecureServing.BindPort = cfg.Port
	o.SecureServing.ServerCert.CertKey.CertFile = cfg.ServingCert
	o.SecureServing.ServerCert.CertKey.KeyFile = cfg.ServingKey
	o.Authentication.RemoteKubeConfigFile = cfg.Kubeconfig
	o.Authorization.RemoteKubeConfigFile = cfg.Kubeconfig
	// The API server's own health endpoints need no authorization, as in
	// the upstream manifests.
	o.Authorization.AlwaysAllowPaths = []string{"/healthz", "/livez", "/readyz"}
	o.KubeletClient.KubeletCAFile = cfg.KubeletCAFile
	o.KubeletClient.KubeletPreferredAddressTypes = []string{"InternalIP", "ExternalIP", "Hostname"}
	o.KubeletClient.KubeletUseNodeStatusPort = true
	if errs := o.KubeletClient.Validate(); len(errs) > 0 {
		return errs[0]
	}
	sc, err := o.ServerConfig()
	if err != nil {
		return fmt.Errorf("metrics-server: %w", err)
	}
	// No /debug/pprof, as on every other component of kubox (upstream's
	// generic server config turns it on, and metrics-server has no flag).
	sc.Apiserver.EnableProfiling = false
	s, err := sc.Complete()
	if err != nil {
		return fmt.Errorf("metrics-server: %w", err)
	}
	cfg.Log.Infof("serving the metrics API on %s", ln.Addr())
	return s.RunUntil(ctx.Done())
}
