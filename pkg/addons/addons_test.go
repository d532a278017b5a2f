package addons

import (
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/kubox-io/kubox/manifests"
	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/logging"
)

// TestRegistry: --disable accepts exactly the registered add-ons, and every
// manifest template belongs to one.
func TestRegistry(t *testing.T) {
	if !slices.Equal(Names(), config.Addons) {
		t.Errorf("registered add-ons %v, but --disable accepts %v", Names(), config.Addons)
	}
	files, err := fs.Glob(manifests.Addons, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(f, ".yaml"); !slices.Contains(Names(), name) {
			t.Errorf("manifests/%s belongs to no registered add-on", f)
		}
	}
}

func names(comps []component.Component) []string {
	var out []string
	for _, c := range comps {
		out = append(out, c.Name())
	}
	return out
}

// TestNodeComponents: a disabled add-on's controllers do not run on nodes;
// servicelb's clean-up does.
func TestNodeComponents(t *testing.T) {
	env := NodeEnv{Agent: &config.Agent{NodeName: "n1"}, Kubeconfig: "/dev/null", Log: logging.New(io.Discard, 0, false)}
	if got := names(NodeComponents(env, nil)); !slices.Equal(got, []string{"local-storage", "servicelb"}) {
		t.Errorf("with nothing disabled: %v", got)
	}
	got := names(NodeComponents(env, map[string]bool{"local-storage": true, "servicelb": true}))
	if !slices.Equal(got, []string{"servicelb-off"}) {
		t.Errorf("with local-storage and servicelb disabled: %v, want only servicelb-off", got)
	}
}
