// Package kuboxmetrics reports kubox's own figures to Prometheus: the
// start-up's phases, the certificates' time left, the datastore's files
// and the newest snapshot's age. They are registered in the process-wide
// registry that the API server's /metrics serves on a server (and the
// kubelet's /metrics on an agent), so they are scraped with the same
// credentials as the rest of that endpoint. Each figure is read when it is
// scraped.
package kuboxmetrics

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/pki"
	"github.com/kubox-io/kubox/pkg/snapshot"
)

// Sources are where the figures come from; any may be empty.
type Sources struct {
	Phases         *component.Phases
	CertDirs       []string // directories of the certificates kubox keeps
	DatastoreFiles []string // the database's files (SQLite and its WAL, etcd's db)
	SnapshotDir    string
	Imports        *Imports // the node's image archive imports; nil without a node
}

// Collector is the figures as a prometheus.Collector.
type Collector struct {
	src                                 Sources
	now                                 func() time.Time
	phase, expiry, file, snapAge, snaps *prometheus.Desc
	archives, images, bytes, seconds    *prometheus.Desc
}

// New returns the collector for src.
func New(src Sources) *Collector {
	return &Collector{src: src, now: time.Now,
		phase: prometheus.NewDesc("kubox_startup_phase_seconds",
			"Seconds from the process's start until the component was first ready.", []string{"phase"}, nil),
		expiry: prometheus.NewDesc("kubox_certificate_expiry_seconds",
			"Seconds until the certificate expires (negative once it has), by the name kubox certificate check shows.",
			[]string{"name", "file"}, nil),
		file: prometheus.NewDesc("kubox_datastore_file_bytes",
			"Size of a file of the datastore (the SQLite database and its write-ahead log, or etcd's database).", []string{"file"}, nil),
		snapAge: prometheus.NewDesc("kubox_snapshot_newest_age_seconds",
			"Seconds since the newest snapshot in the snapshot directory was taken.", nil, nil),
		snaps: prometheus.NewDesc("kubox_snapshots",
			"Snapshots in the snapshot directory.", nil, nil),
		archives: prometheus.NewDesc("kubox_image_import_archives_total",
			"Image archives imported from agent/images, by result (success or error).", []string{"result"}, nil),
		images: prometheus.NewDesc("kubox_image_import_images_total",
			"Images imported from archives in agent/images.", nil, nil),
		bytes: prometheus.NewDesc("kubox_image_import_bytes_total",
			"Bytes read from image archives in agent/images.", nil, nil),
		seconds: prometheus.NewDesc("kubox_image_import_seconds_total",
			"Seconds spent importing image archives from agent/images.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.phase, c.expiry, c.file, c.snapAge, c.snaps, c.archives, c.images, c.bytes, c.seconds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, p := range c.src.Phases.List() {
		gauge(c.phase, p.Seconds, p.Name)
	}
	if f, ok := c.src.Imports.figures(); ok {
		counter := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
		}
		counter(c.archives, float64(f.ok), "success")
		counter(c.archives, float64(f.failed), "error")
		counter(c.images, float64(f.images))
		counter(c.bytes, float64(f.bytes))
		counter(c.seconds, f.seconds)
	}
	now := c.now()
	if len(c.src.CertDirs) > 0 {
		list, err := pki.Inventory(c.src.CertDirs...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.expiry, err)
		}
		for _, cert := range list {
			gauge(c.expiry, cert.NotAfter.Sub(now).Seconds(), cert.Name, cert.File)
		}
	}
	for _, f := range c.src.DatastoreFiles {
		if st, err := os.Stat(f); err == nil {
			gauge(c.file, float64(st.Size()), f)
		}
	}
	if c.src.SnapshotDir != "" {
		list, err := snapshot.Store{Dir: c.src.SnapshotDir}.List(context.Background())
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.snaps, err)
			return
		}
		gauge(c.snaps, float64(len(list)))
		var newest time.Time
		for _, m := range list {
			if m.Created.After(newest) {
				newest = m.Created
			}
		}
		if !newest.IsZero() {
			gauge(c.snapAge, now.Sub(newest).Seconds())
		}
	}
}

// Register adds c to the registry the API server's and the kubelet's
// /metrics serve (the process-wide one upstream keeps) and returns its
// removal. A second server in the same process finds the figures taken by
// the first: it reports nothing, and says so through warn.
func (c *Collector) Register(warn func(format string, args ...any)) func() {
	reg := legacyregistry.Registerer()
	if err := reg.Register(c); err != nil {
		var taken prometheus.AlreadyRegisteredError
		if errors.As(err, &taken) {
			warn("kubox's own metrics are reported by another server in this process")
		} else {
			warn("cannot report kubox's own metrics: %v", err)
		}
		return func() {}
	}
	return func() { reg.Unregister(c) }
}

// Shared is the registry the API server's /metrics serves, for collectors
// that live as long as the process (kine's are package variables): the
// first registration counts, and a later one of the same collectors, by a
// second server in the process or a restarted datastore, is a no-op.
func Shared() prometheus.Registerer {
	return shared{legacyregistry.Registerer()}
}

type shared struct{ prometheus.Registerer }

// Register implements prometheus.Registerer.
func (s shared) Register(c prometheus.Collector) error {
	var taken prometheus.AlreadyRegisteredError
	if err := s.Registerer.Register(c); err != nil && !errors.As(err, &taken) {
		return err
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (s shared) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := s.Register(c); err != nil {
			panic(err)
		}
	}
}
