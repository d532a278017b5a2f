// Package repo checks rules that hold for the whole repository, such as the
// direction of package dependencies in DESIGN.md.
package repo

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/kubox-io/kubox"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", "providerless", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// TestDependencyRules enforces DESIGN.md: nothing imports pkg/cli but the
// main package; only pkg/k8s/embedded imports k8s.io/kubernetes/cmd/...;
// server and agent never import each other; the light packages stay light.
func TestDependencyRules(t *testing.T) {
	cli := module + "/pkg/cli"
	embedded := module + "/pkg/k8s/embedded"
	server := module + "/pkg/server"
	agent := module + "/pkg/agent"
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if imp == cli && p.ImportPath != module+"/cmd/kubox" {
				t.Errorf("%s imports %s: only cmd/kubox may", p.ImportPath, cli)
			}
			if strings.HasPrefix(imp, "k8s.io/kubernetes/cmd/") && p.ImportPath != embedded {
				t.Errorf("%s imports %s: only %s may import k8s.io/kubernetes/cmd", p.ImportPath, imp, embedded)
			}
		}
		deps := map[string]bool{}
		for _, d := range p.Deps {
			deps[d] = true
		}
		if strings.HasPrefix(p.ImportPath, server) && (deps[agent] || hasPrefix(p.Deps, agent+"/")) {
			t.Errorf("%s depends on %s: server and agent must not import each other", p.ImportPath, agent)
		}
		if strings.HasPrefix(p.ImportPath, agent) && (deps[server] || hasPrefix(p.Deps, server+"/")) {
			t.Errorf("%s depends on %s: server and agent must not import each other", p.ImportPath, server)
		}
		// The launcher fronts every released file: it stays a small
		// program, without the configuration's upstream dependencies.
		if p.ImportPath == module+"/cmd/kubox-launcher" && (deps[module+"/pkg/config"] || hasPrefix(p.Deps, "k8s.io/")) {
			t.Errorf("%s depends on %s or k8s.io: it may use pkg/config/paths and pkg/sfx only", p.ImportPath, module+"/pkg/config")
		}
		// Configuration, PKI, argument builders and the join protocol must
		// build and test without the heavy upstream tree.
		for _, light := range []string{"/pkg/config", "/pkg/pki", "/pkg/k8s/args", "/pkg/component", "/pkg/configfile", "/pkg/join"} {
			if strings.HasPrefix(p.ImportPath, module+light) && hasPrefix(p.Deps, "k8s.io/kubernetes/") {
				t.Errorf("%s depends on k8s.io/kubernetes: keep it light", p.ImportPath)
			}
		}
	}
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
