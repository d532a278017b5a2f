package kubectltext

import (
	"strings"
	"testing"
)

func TestRunsKubectl(t *testing.T) {
	for args, want := range map[string]bool{
		"/usr/local/bin/kubectl get pods": true,
		"kubox kubectl get pods":          true,
		"kubox server":                    false,
		"kubox containerd --config x":     false,
		"kubox":                           false,
	} {
		if got := runsKubectl(strings.Fields(args)); got != want {
			t.Errorf("%q: %v, want %v", args, got, want)
		}
	}
	if runsKubectl(nil) {
		t.Error("no arguments: kubectl")
	}
}
