package server

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubox-io/kubox/pkg/pki"
)

// TestCertExpiryMetric: every certificate in the server's directory is
// reported with the time it has left, and a second server in the process
// is told the metric is taken.
func TestCertExpiryMetric(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	if _, _, err := pki.EnsureControlPlane(dir, pki.SANs{DNSNames: []string{"kubernetes"}}, 10*time.Hour, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	c := newCertExpiry(dir, filepath.Join(t.TempDir(), "no-agent"))
	c.now = func() time.Time { return now.Add(time.Hour) }
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" {
					got[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	// Leaves were issued for 10 h, an hour ago; the CAs live for years.
	if v := got["serving-kube-apiserver"]; v < 8.9*3600 || v > 9.1*3600 {
		t.Errorf("serving-kube-apiserver has %.0f s left, want about 9 h; all: %v", v, got)
	}
	if v := got["server-ca"]; v < 365*24*3600 {
		t.Errorf("server-ca has %.0f s left", v)
	}

	var warned []string
	warn := func(format string, args ...any) { warned = append(warned, fmt.Sprintf(format, args...)) }
	unregister := newCertExpiry(dir).register(warn)
	newCertExpiry(dir).register(warn)()
	if len(warned) != 1 {
		t.Errorf("warnings %q, want one for the second registration", warned)
	}
	unregister()
	newCertExpiry(dir).register(warn)()
	if len(warned) != 1 {
		t.Errorf("after the first unregistered, registering again warned: %q", warned)
	}
}
