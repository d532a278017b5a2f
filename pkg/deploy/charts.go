package deploy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// helmChartKind is the HelmChart of helm.cattle.io (pkg/helmcontroller).
var helmChartKind = schema.GroupKind{Group: "helm.cattle.io", Kind: "HelmChart"}

// inlineCharts lets a HelmChart in a manifest name a chart archive lying
// beside it: `chart: name.tgz`, with no repo and no chartContent, is
// carried into spec.chartContent, so that the chart installs with no
// repository and from any server. It returns the archives it read.
func inlineCharts(dir string, objs []*unstructured.Unstructured) ([]string, error) {
	var used []string
	for _, u := range objs {
		if u.GroupVersionKind().GroupKind() != helmChartKind {
			continue
		}
		chart, _, _ := unstructured.NestedString(u.Object, "spec", "chart")
		repo, _, _ := unstructured.NestedString(u.Object, "spec", "repo")
		content, _, _ := unstructured.NestedString(u.Object, "spec", "chartContent")
		if !localChart(chart) || repo != "" || content != "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, chart))
		if err != nil {
			return nil, fmt.Errorf("HelmChart %s: spec.chart names %s, which is not beside the manifest: %v", u.GetName(), chart, err)
		}
		if err := unstructured.SetNestedField(u.Object, base64.StdEncoding.EncodeToString(data), "spec", "chartContent"); err != nil {
			return nil, err
		}
		used = append(used, chart)
	}
	return used, nil
}

// localChart tells whether spec.chart names an archive file in the
// manifests directory itself.
func localChart(chart string) bool {
	return strings.HasSuffix(chart, ".tgz") && len(chart) > len(".tgz") &&
		!strings.ContainsAny(chart, `/\:`) && !strings.HasPrefix(chart, ".")
}

// fileHash identifies a manifest as applied: its bytes and those of the
// chart archives it carries, so that a new archive is applied too.
func fileHash(dir string, data []byte, charts []string) string {
	h := sha256.New()
	h.Write(data)
	for _, c := range charts {
		b, err := os.ReadFile(filepath.Join(dir, c))
		if err != nil {
			b = []byte("missing")
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "\x00%s\x00%x", c, sum)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
