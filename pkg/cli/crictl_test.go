package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kubox-io/kubox/pkg/config/paths"
)

func TestCrictlGlobals(t *testing.T) {
	for _, c := range []struct {
		args    []string
		given   []string
		command string
	}{
		{nil, nil, ""},
		{[]string{"ps", "-a"}, nil, "ps"},
		{[]string{"-r", "unix:///x.sock", "images"}, []string{"runtime-endpoint"}, "images"},
		{[]string{"--timeout=3s", "-D", "logs", "-f", "abc"}, []string{"debug", "timeout"}, "logs"},
		{[]string{"--config", "/etc/crictl.yaml", "--image-endpoint", "unix:///i", "pull", "x"}, []string{"config", "image-endpoint"}, "pull"},
		// exec's -i is exec's, not --image-endpoint.
		{[]string{"exec", "-i", "abc", "sh"}, nil, "exec"},
		{[]string{"-v"}, []string{"version"}, ""},
	} {
		given, command := crictlGlobals(c.args)
		var names []string
		for n := range given {
			names = append(names, n)
		}
		sort.Strings(names)
		if command != c.command || !reflect.DeepEqual(names, c.given) {
			t.Errorf("crictlGlobals(%q) = %v, %q; want %v, %q", c.args, names, command, c.given, c.command)
		}
	}
}

func TestCrictlNeedsRuntime(t *testing.T) {
	for args, want := range map[string]bool{
		"ps": true, "version": true, "images --pinned": true,
		"": false, "--help": false, "--version": false, "help": false,
		"completion bash": false, "config --get timeout": false, "ps --help": false,
	} {
		a := strings.Fields(args)
		given, command := crictlGlobals(a)
		if got := crictlNeedsRuntime(a, given, command); got != want {
			t.Errorf("crictl %s needs the runtime: %v, want %v", args, got, want)
		}
	}
}

// The preset names the node's socket for both services and is written
// once; a stopped node is one line naming the socket and the way out.
func TestCrictlPreset(t *testing.T) {
	dir := t.TempDir()
	p := paths.New(filepath.Join(dir, "data"), filepath.Join(dir, "etc"), filepath.Join(dir, "run"))
	if err := writeCrictlConfig(p); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p.CrictlConfig)
	want := "runtime-endpoint: unix://" + p.ContainerdSocket + "\nimage-endpoint: unix://" + p.ContainerdSocket + "\ntimeout: 10\n"
	if err != nil || !strings.HasSuffix(string(got), want) {
		t.Fatalf("%s: %q, %v", p.CrictlConfig, got, err)
	}

	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("data-dir: "+p.DataDir+"\nrun-dir: "+p.RunDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBOX_CONFIG_FILE", cfg)
	for _, name := range crictlEnv() {
		t.Setenv(name, "")
	}
	err = execCrictl([]string{"ps"})
	if err == nil || !strings.Contains(err.Error(), "no container runtime socket at "+p.ContainerdSocket) ||
		!strings.Contains(err.Error(), "--runtime-endpoint") || strings.Contains(err.Error(), "\n") {
		t.Errorf("crictl ps with the node stopped: %v", err)
	}
}
