package embedded

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// TestInformerNames: a second component of a kind in one process takes a
// name of its own instead of failing on client-go's process-wide registry.
func TestInformerNames(t *testing.T) {
	first, err := informerName("kubox-test-component")
	if err != nil {
		t.Fatal(err)
	}
	second, err := informerName("kubox-test-component")
	if err != nil {
		t.Fatal(err)
	}
	if first.Name() != "kubox-test-component" || second.Name() != "kubox-test-component-2" {
		t.Errorf("names %q and %q", first.Name(), second.Name())
	}
	first.Release()
	again, err := informerName("kubox-test-component")
	if err != nil || again.Name() != "kubox-test-component" {
		t.Errorf("after the first is released: %v, %v", again, err)
	}
}

// TestParseFlags: upstream's own flag sets parse kubox's arguments, and a
// bad one is named with the kubox flag that passes it.
func TestParseFlags(t *testing.T) {
	var fss cliflag.NamedFlagSets
	var port int
	fss.FlagSet("secure serving").IntVar(&port, "secure-port", 0, "")
	if err := parseFlags("kube-scheduler", fss, []string{"--secure-port=10259"}); err != nil || port != 10259 {
		t.Fatalf("port %d, %v", port, err)
	}
	err := parseFlags("kube-scheduler", fss, []string{"--no-such-flag=1"})
	if err == nil || !strings.Contains(err.Error(), "check --scheduler-arg") {
		t.Errorf("a bad argument: %v", err)
	}
}

// kube-proxy's readiness waits for the families of --cluster-cidr only.
func TestClusterFamilies(t *testing.T) {
	for _, c := range []struct {
		cidr string
		want []string
	}{
		{"10.42.0.0/16", []string{"IPv4"}},
		{"fd42::/56", []string{"IPv6"}},
		{"10.42.0.0/16,fd42::/56", []string{"IPv4", "IPv6"}},
		{"", nil},
		{"not-a-cidr", nil},
	} {
		fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
		fs.String("cluster-cidr", c.cidr, "")
		got := clusterFamilies(fs.Lookup("cluster-cidr"))
		var names []string
		for f := range got {
			names = append(names, f)
		}
		slices.Sort(names)
		if !slices.Equal(names, c.want) {
			t.Errorf("clusterFamilies(%q) = %v, want %v", c.cidr, names, c.want)
		}
	}
}
