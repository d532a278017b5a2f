package server

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/kubox-io/kubox/pkg/pki"
)

// certExpiry reports how long each certificate kubox keeps has left, read
// from the files at every scrape, as kubox_certificate_expiry_seconds on
// the API server's /metrics.
type certExpiry struct {
	desc *prometheus.Desc
	dirs []string
	now  func() time.Time
}

func newCertExpiry(dirs ...string) *certExpiry {
	return &certExpiry{
		desc: prometheus.NewDesc("kubox_certificate_expiry_seconds",
			"Seconds until the certificate expires (negative once it has), by the name kubox certificate check shows.",
			[]string{"name", "file"}, nil),
		dirs: dirs,
		now:  time.Now,
	}
}

func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	list, err := pki.Inventory(c.dirs...)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	now := c.now()
	for _, cert := range list {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, cert.NotAfter.Sub(now).Seconds(), cert.Name, cert.File)
	}
}

// register adds c to the registry the API server's /metrics serves (the
// process-wide one upstream keeps) and returns its removal. A second server
// in the same process finds the metric taken by the first: it reports
// nothing, and says so.
func (c *certExpiry) register(warn func(format string, args ...any)) func() {
	reg := legacyregistry.Registerer()
	if err := reg.Register(c); err != nil {
		var taken prometheus.AlreadyRegisteredError
		if errors.As(err, &taken) {
			warn("kubox_certificate_expiry_seconds is reported by another server in this process")
		} else {
			warn("cannot report kubox_certificate_expiry_seconds: %v", err)
		}
		return func() {}
	}
	return func() { reg.Unregister(c) }
}
