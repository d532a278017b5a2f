// Package embedded is the only place kubox imports the upstream Kubernetes
// commands (k8s.io/kubernetes/cmd/...). Each upstream component is wrapped as
// a component.Component, started through its exported entry points with a
// context kubox owns, never through its cobra command (which would install
// signal handlers and re-apply logging for the whole process).
package embedded

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/cache"
	cliflag "k8s.io/component-base/cli/flag"
)

// parseFlags applies kubox's flags to upstream's own flag sets, so upstream's
// parsing, defaulting and validation apply exactly as for the standalone
// binary. component names the component in errors.
func parseFlags(component string, fss cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	fs.SetOutput(discard{})
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("invalid %s argument: %v; check --%s-arg", component, err, strings.TrimPrefix(component, "kube-"))
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// informerName reserves the name under which a component's informers report
// metrics. client-go keeps these names in a process-wide registry, so a
// second server in the same process takes base-2, base-3, and so on; the
// first keeps the name the standalone component would use.
func informerName(base string) (*cache.InformerName, error) {
	name, err := cache.NewInformerName(base)
	for n := 2; err != nil && n < 100; n++ {
		name, err = cache.NewInformerName(fmt.Sprintf("%s-%d", base, n))
	}
	return name, err
}
