package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelmChart: a HelmChart carrying its chart installs it with no
// repository, a change of values upgrades it, a HelmChartConfig's values
// win over the HelmChart's, a chart that does not render says why in the
// HelmChart's status and Events until it is fixed, and deleting the
// HelmChart uninstalls the release. A chart archive beside a manifest in
// the manifests directory installs too, and leaves with the manifest.
// With --disable helm-controller the CRDs stay and nothing acts on charts.
func TestHelmChart(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	archive := packChart(t, "testdata/helm/demo")
	s := newServer(t)
	s.StartReady()

	dir := t.TempDir()
	apply := func(name, body string) {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s.MustKubectl("apply", "-f", f)
	}
	get := func(args ...string) string {
		out, _ := s.Kubectl(append([]string{"get"}, args...)...)
		return strings.TrimSpace(out)
	}
	chart := func(valuesContent string) string {
		return `apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: demo, namespace: kube-system}
spec:
  chartContent: ` + base64.StdEncoding.EncodeToString(archive) + `
  targetNamespace: helm-apps
  createNamespace: true
  helmVersion: v3
  bootstrap: false
  set: {size: 3}
  valuesContent: |-
` + indent(valuesContent, "    ")
	}
	jsonpath := func(path string) string {
		return get("helmchart", "demo", "-n", "kube-system", "-o", "jsonpath="+path)
	}
	cond := func(typ, field string) string {
		return jsonpath(`{.status.conditions[?(@.type=="` + typ + `")].` + field + `}`)
	}
	configMap := func(key string) string {
		return get("configmap", "demo-settings", "-n", "helm-apps", "-o", "jsonpath={.data."+key+"}")
	}
	waitValue := func(what, key, want string, revision string) {
		t.Helper()
		waitFor(t, what, time.Minute, func() (bool, string) {
			got := configMap(key)
			rev := jsonpath("{.status.revision}")
			return got == want && rev == revision, "configmap " + key + "=" + got + ", revision " + rev + ", Failed: " + cond("Failed", "message")
		})
	}

	// The manifests directory: a chart archive beside its HelmChart.
	manifests := filepath.Join(s.DataDir, "server", "manifests")
	if err := os.WriteFile(filepath.Join(manifests, "demo-0.1.0.tgz"), archive, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(manifests, "local-demo.yaml"), []byte(`apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: local, namespace: kube-system}
spec: {chart: demo-0.1.0.tgz, targetNamespace: kube-system}
`), 0o600); err != nil {
		t.Fatal(err)
	}

	// 1. Install: the chart's default value, the set value, revision 1.
	waitFor(t, "the HelmChart kind", time.Minute, func() (bool, string) {
		_, err := s.Kubectl("get", "helmcharts", "-A")
		return err == nil, ""
	})
	apply("demo.yaml", chart("# the chart's defaults"))
	waitValue("the chart installed", "color", "blue", "1")
	if size := configMap("size"); size != "3" {
		t.Errorf("set size=3: the ConfigMap has size %q", size)
	}
	if st, reason := cond("Installed", "status"), cond("Installed", "reason"); st != "True" || reason != "Installed" {
		t.Errorf("condition Installed %s (%s), want True (Installed)", st, reason)
	}
	if out := get("helmchart", "demo", "-n", "kube-system"); !strings.Contains(out, "helm-apps") || !strings.Contains(out, " 1 ") {
		t.Errorf("kubectl get helmchart shows no target namespace and revision 1:\n%s", out)
	}
	if out := get("events", "-n", "kube-system", "--field-selector", "involvedObject.name=demo,reason=Installed", "-o", "jsonpath={.items[*].message}"); !strings.Contains(out, "demo-0.1.0") {
		t.Errorf("no Installed event names the chart: %q", out)
	}

	// The manifests directory's chart installed beside it.
	waitFor(t, "the chart beside its manifest installed", time.Minute, func() (bool, string) {
		out := get("configmap", "local-settings", "-n", "kube-system", "-o", "jsonpath={.data.color}")
		return out == "blue", out
	})

	// 2. New values upgrade the release.
	apply("demo.yaml", chart("color: green"))
	waitValue("the upgrade to color green", "color", "green", "2")

	// 3. A HelmChartConfig's values win over the HelmChart's.
	apply("demo-config.yaml", `apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata: {name: demo, namespace: kube-system}
spec:
  valuesContent: |-
    color: purple
`)
	waitValue("the HelmChartConfig's color", "color", "purple", "3")

	// 4. A chart that does not render: the error in status and Events, the
	// deployed revision untouched; fixing the HelmChart upgrades.
	apply("demo.yaml", chart("strict: true"))
	waitFor(t, "the render failure in the status", time.Minute, func() (bool, string) {
		msg := cond("Failed", "message")
		return cond("Failed", "status") == "True" && strings.Contains(msg, "strict mode needs values.secret"), msg
	})
	if rev := jsonpath("{.status.revision}"); rev != "3" {
		t.Errorf("after a failed upgrade the status shows revision %s, want 3 (still deployed)", rev)
	}
	if out := get("events", "-n", "kube-system", "--field-selector", "involvedObject.name=demo,reason=UpgradeFailed", "-o", "jsonpath={.items[*].message}"); !strings.Contains(out, "strict mode needs values.secret") {
		t.Errorf("no UpgradeFailed event with the error: %q", out)
	}
	apply("demo.yaml", chart("strict: true\nsecret: s3cr3t"))
	waitValue("the fixed chart", "secret", "s3cr3t", "4")
	if st := cond("Failed", "status"); st != "False" {
		t.Errorf("after the fix, condition Failed is %q, want False", st)
	}

	// 5. Deleting the HelmChart uninstalls the release, Secrets and all.
	s.MustKubectl("delete", "helmchart", "demo", "-n", "kube-system", "--timeout=60s")
	if out, err := s.Kubectl("get", "configmap", "demo-settings", "-n", "helm-apps"); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("the release's ConfigMap outlived its HelmChart: %s", out)
	}
	if out := get("secrets", "-n", "helm-apps", "-l", "owner=helm,name=demo", "-o", "name"); out != "" {
		t.Errorf("release Secrets left after the uninstall: %s", out)
	}
	if out := get("events", "-n", "kube-system", "--field-selector", "involvedObject.name=demo,reason=Uninstalled", "-o", "jsonpath={.items[*].message}"); !strings.Contains(out, "helm-apps/demo") {
		t.Errorf("no Uninstalled event: %q", out)
	}

	// The manifest's chart leaves with its manifest.
	if err := os.Remove(filepath.Join(manifests, "local-demo.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the manifest's release uninstalled", time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "configmap", "local-settings", "-n", "kube-system")
		return err != nil && strings.Contains(out, "NotFound"), out
	})

	// 6. --disable helm-controller: the CRDs stay, nothing acts on a chart.
	s.Stop()
	s.Args = append(s.Args, "--disable", "helm-controller")
	s.StartReady()
	apply("idle.yaml", strings.Replace(chart("color: grey"), "name: demo,", "name: idle,", 1))
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if out := get("helmchart", "idle", "-n", "kube-system", "-o", "jsonpath={.metadata.finalizers}{.status}"); out != "" {
			t.Fatalf("with helm-controller disabled, a HelmChart was acted on: %s", out)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log")); strings.Count(string(log), "[helm-controller] reconciling HelmCharts") != 1 {
		t.Error("the helm controller ran again with --disable helm-controller")
	}
}

// packChart packs a chart directory as `helm package` would: a gzipped
// tar with the chart's files under its name.
func packChart(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	name := filepath.Base(dir)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
