package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParse(t *testing.T) {
	objs, err := parse("a.yaml", []byte("# c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetKind() != "Secret" {
		t.Fatalf("parsed %d objects: %v", len(objs), objs)
	}
	_, err = parse("b.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b\n  x: y\n"))
	if err == nil || !errors.Is(err, errParse) || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("want a parse error naming line 5, got %v", err)
	}
	if _, err := parse("c.yaml", []byte("kind: ConfigMap\n")); err == nil {
		t.Fatalf("an object without apiVersion and name was accepted")
	}
}

func TestManagedAndSkip(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "b.yml", "c.json", "d.txt", ".hidden.yaml", "e.yaml", "e.yaml.skip"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	got, err := Managed(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["a.yaml"] == "" || got["b.yml"] == "" || got["c.json"] == "" {
		t.Fatalf("managed files: %v", got)
	}
}

func TestWriteAddons(t *testing.T) {
	dir := t.TempDir()
	addons := fstest.MapFS{
		"dns.yaml":   {Data: []byte("ip: {{.DNS}}\n")},
		"extra.yaml": {Data: []byte("x: 1\n")},
	}
	vals := struct{ DNS string }{"10.43.0.10"}
	if err := WriteAddons(dir, addons, vals, nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "dns.yaml"))
	if !strings.Contains(string(data), "ip: 10.43.0.10") {
		t.Fatalf("dns.yaml: %s", data)
	}
	// A user's edit under a .skip file survives.
	os.WriteFile(filepath.Join(dir, "dns.yaml"), []byte("mine"), 0o600)
	os.WriteFile(filepath.Join(dir, "dns.yaml.skip"), nil, 0o600)
	WriteAddons(dir, addons, vals, map[string]bool{"dns": true})
	if data, _ := os.ReadFile(filepath.Join(dir, "dns.yaml")); string(data) != "mine" {
		t.Fatalf("skipped add-on rewritten: %s", data)
	}
	// Disabling removes kubox's own file, never a user's.
	WriteAddons(dir, addons, vals, map[string]bool{"extra": true})
	if _, err := os.Stat(filepath.Join(dir, "extra.yaml")); !os.IsNotExist(err) {
		t.Fatalf("disabled add-on file still there")
	}
	os.WriteFile(filepath.Join(dir, "extra.yaml"), []byte("user file"), 0o600)
	WriteAddons(dir, addons, vals, map[string]bool{"extra": true})
	if _, err := os.Stat(filepath.Join(dir, "extra.yaml")); err != nil {
		t.Fatalf("a user's file was removed by --disable")
	}
	// Missing template values are an error, not an empty string.
	if err := WriteAddons(t.TempDir(), addons, struct{}{}, nil); err == nil {
		t.Fatalf("missing value accepted")
	}
}

func TestKeys(t *testing.T) {
	for _, n := range []string{"a.yaml", "my app.yaml", "ünï.yaml"} {
		if got := unkey(key(n)); got != n {
			t.Errorf("unkey(key(%q)) = %q", n, got)
		}
	}
}
