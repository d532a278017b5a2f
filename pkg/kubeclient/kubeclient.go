// Package kubeclient opens API clients from the kubeconfig files kubox
// writes for its own components.
package kubeclient

import (
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"
)

// Config reads a kubeconfig file.
func Config(kubeconfig string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return rc, nil
}

// New returns a clientset for a kubeconfig file.
func New(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := Config(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// SetCertReload sets how often every client in this process re-reads the
// certificate files its kubeconfig names, and reconnects when they changed
// (client-go's default: five minutes). An open connection keeps the
// certificate it was opened with, which the API server checks on every
// request, so the interval must be well inside a certificate's renewal
// margin. This is client-go's process-wide setting: call it once, before
// any client starts.
func SetCertReload(d time.Duration) {
	transport.CertCallbackRefreshDuration = d
}

// CertReloadFor is the reload interval for certificates that live at least
// shortest: a tenth of that, at most client-go's default, at least 1 s.
func CertReloadFor(shortest time.Duration) time.Duration {
	return max(min(shortest/10, 5*time.Minute), time.Second)
}
