package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestManifests: files dropped into server/manifests are applied within
// seconds, updated when they change, their objects deleted when they go;
// a .skip file hands a manifest to the user; a broken file is reported by
// name and line and does not hold up the others.
func TestManifests(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	s := newServer(t)
	s.StartReady()
	dir := filepath.Join(s.DataDir, "server", "manifests")
	write := func(name, body string) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	get := func(args ...string) (string, bool) {
		out, err := s.Kubectl(append([]string{"get"}, args...)...)
		return strings.TrimSpace(out), err == nil
	}
	gone := func(args ...string) func() (bool, string) {
		return func() (bool, string) {
			out, ok := get(args...)
			return !ok && strings.Contains(out, "NotFound"), out
		}
	}

	write("app.yaml", `# an app
apiVersion: v1
kind: Namespace
metadata: {name: drop-in}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: drop-in}
data: {color: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: extra, namespace: drop-in}
data: {x: "1"}
`)
	waitFor(t, "app.yaml applied", time.Minute, func() (bool, string) {
		out, ok := get("configmap", "settings", "-n", "drop-in", "-o", "jsonpath={.data.color}")
		return ok && out == "blue", out
	})

	// A broken file next to a good one: reported, and the good one applies.
	write("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad\n  namespace: drop-in\n")
	write("good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good, namespace: drop-in}\n")
	waitFor(t, "good.yaml applied beside a broken file", time.Minute, func() (bool, string) {
		_, ok := get("configmap", "good", "-n", "drop-in")
		return ok, ""
	})
	waitFor(t, "broken.yaml reported", time.Minute, func() (bool, string) {
		log := s.tail(3000)
		return strings.Contains(log, "cannot apply "+filepath.Join(dir, "broken.yaml")) && strings.Contains(log, "line "), ""
	})
	if out, _ := get("events", "-n", "kube-system", "--field-selector", "reason=ManifestFailed", "-o", "jsonpath={.items[*].message}"); !strings.Contains(out, "broken.yaml") {
		t.Errorf("no ManifestFailed event names broken.yaml: %q", out)
	}

	// A change updates; an object dropped from the file is deleted.
	write("app.yaml", `apiVersion: v1
kind: Namespace
metadata: {name: drop-in}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: drop-in}
data: {color: green}
`)
	waitFor(t, "app.yaml change applied", time.Minute, func() (bool, string) {
		out, _ := get("configmap", "settings", "-n", "drop-in", "-o", "jsonpath={.data.color}")
		return out == "green", out
	})
	waitFor(t, "extra pruned", time.Minute, gone("configmap", "extra", "-n", "drop-in"))

	// .skip: kubox lets go of good.yaml; removing it then deletes nothing.
	// Each pass of the deploy controller reads the directory once; a marker
	// written after the removal and applied, then a second one applied,
	// shows that a whole pass has seen the removal.
	write("good.yaml.skip", "")
	os.Remove(filepath.Join(dir, "good.yaml"))
	for _, marker := range []string{"marker-1", "marker-2"} {
		write(marker+".yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+marker+", namespace: default}\n")
		waitFor(t, marker+" applied", time.Minute, func() (bool, string) {
			_, ok := get("configmap", marker)
			return ok, ""
		})
	}
	if _, ok := get("configmap", "good", "-n", "drop-in"); !ok {
		t.Errorf("good.yaml is skipped, yet its ConfigMap was deleted")
	}

	// Deleting a file deletes what it created.
	os.Remove(filepath.Join(dir, "app.yaml"))
	waitFor(t, "settings deleted with app.yaml", time.Minute, gone("configmap", "settings", "-n", "drop-in"))

	// What kubox applied survives a restart without being re-applied blindly.
	s.Stop()
	s.StartReady()
	write("after.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after, namespace: default}\n")
	waitFor(t, "after.yaml applied after restart", time.Minute, func() (bool, string) {
		_, ok := get("configmap", "after")
		return ok, ""
	})
}
