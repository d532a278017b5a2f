package deploy

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInlineCharts: a HelmChart naming an archive beside its manifest
// carries it; one with a repo, or content of its own, is left alone; a
// missing archive is named; a new archive changes the file's hash.
func TestInlineCharts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app-1.0.0.tgz"), []byte("archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := parse("charts.yaml", []byte(`apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: local}
spec: {chart: app-1.0.0.tgz}
---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: remote}
spec: {chart: app-1.0.0.tgz, repo: https://charts.example}
---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: path}
spec: {chart: ../app-1.0.0.tgz}
`))
	if err != nil {
		t.Fatal(err)
	}
	used, err := inlineCharts(dir, objs)
	if err != nil || len(used) != 1 || used[0] != "app-1.0.0.tgz" {
		t.Fatalf("inlineCharts: %v, %v", used, err)
	}
	want := base64.StdEncoding.EncodeToString([]byte("archive"))
	for i, w := range []string{want, "", ""} {
		spec := objs[i].Object["spec"].(map[string]any)
		if got, _ := spec["chartContent"].(string); got != w {
			t.Errorf("%s: chartContent %q, want %q", objs[i].GetName(), got, w)
		}
	}

	before := fileHash(dir, []byte("x"), used)
	if fileHash(dir, []byte("x"), nil) == before {
		t.Error("the archive does not count in the hash")
	}
	if err := os.WriteFile(filepath.Join(dir, "app-1.0.0.tgz"), []byte("archive 2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fileHash(dir, []byte("x"), used) == before {
		t.Error("a new archive leaves the hash unchanged")
	}

	missing, _ := parse("m.yaml", []byte("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: m}\nspec: {chart: gone-1.0.tgz}\n"))
	if _, err := inlineCharts(dir, missing); err == nil || !strings.Contains(err.Error(), "gone-1.0.tgz") {
		t.Errorf("a missing archive: %v", err)
	}
}
