package kuboxmetrics

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/pki"
)

// TestFigures: every certificate in the server's directory is reported
// with the time it has left, with the start-up's phases and the
// datastore's files; a second server in the process is told the metrics
// are taken.
func TestFigures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	if _, _, err := pki.EnsureControlPlane(dir, pki.SANs{DNSNames: []string{"kubernetes"}}, 10*time.Hour, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	phases := component.NewPhases(now.Add(-3 * time.Second))
	phases.Ready("datastore")
	db := filepath.Join(t.TempDir(), "state.db")
	os.WriteFile(db, make([]byte, 4096), 0o600)
	c := New(Sources{Phases: phases, CertDirs: []string{dir, filepath.Join(t.TempDir(), "no-agent")},
		DatastoreFiles: []string{db, db + "-wal"}, SnapshotDir: filepath.Join(t.TempDir(), "snapshots")})
	c.now = func() time.Time { return now.Add(time.Hour) }
	// Keyed by the one label that names the figure, else by the metric.
	got := gather(t, c, func(metric string, labels map[string]string) string {
		for _, l := range []string{"name", "phase", "file"} {
			if v, ok := labels[l]; ok {
				return v
			}
		}
		return metric
	})
	if v := got["datastore"]; v < 3 || v > 10 {
		t.Errorf("phase datastore at %.1f s, want about 3; all: %v", v, got)
	}
	if v, ok := got[db]; !ok || v != 4096 {
		t.Errorf("datastore file %s: %v (present %v)", db, v, ok)
	}
	if _, ok := got[db+"-wal"]; ok {
		t.Error("a missing WAL file is reported")
	}
	if v, ok := got["kubox_snapshots"]; !ok || v != 0 {
		t.Errorf("kubox_snapshots %v (present %v), want 0", v, ok)
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
	unregister := New(Sources{CertDirs: []string{dir}}).Register(warn)
	New(Sources{CertDirs: []string{dir}}).Register(warn)()
	if len(warned) != 1 {
		t.Errorf("warnings %q, want one for the second registration", warned)
	}
	unregister()
	New(Sources{CertDirs: []string{dir}}).Register(warn)()
	if len(warned) != 1 {
		t.Errorf("after the first unregistered, registering again warned: %q", warned)
	}
}

// TestImports: archive imports are counted by result, with their images,
// bytes and time; a node-less process reports none.
func TestImports(t *testing.T) {
	byResult := func(metric string, labels map[string]string) string {
		if r, ok := labels["result"]; ok {
			return metric + "/" + r
		}
		return metric
	}
	if got := gather(t, New(Sources{}), byResult); len(got) != 0 {
		t.Errorf("figures without a node: %v", got)
	}
	imp := &Imports{}
	imp.Record(2, 1000, 2*time.Second, nil)
	imp.Record(0, 10, time.Second, fmt.Errorf("corrupt"))
	got := gather(t, New(Sources{Imports: imp}), byResult)
	want := map[string]float64{
		"kubox_image_import_archives_total/success": 1, "kubox_image_import_archives_total/error": 1,
		"kubox_image_import_images_total": 2, "kubox_image_import_bytes_total": 1010, "kubox_image_import_seconds_total": 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// gather collects c's figures, each keyed by key(metric name, labels).
func gather(t *testing.T, c prometheus.Collector, key func(metric string, labels map[string]string) string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			got[key(f.GetName(), labels)] = v
		}
	}
	return got
}
