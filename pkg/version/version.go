// Package version holds kubox's own version and commit, stamped at link time
// by the Makefile (-X), and the Kubernetes version it embeds.
package version

import (
	"fmt"
	"runtime"

	kversion "k8s.io/component-base/version"
)

// Set with -ldflags "-X github.com/kubox-io/kubox/pkg/version.Version=…" by the
// Makefile; a plain go build leaves the defaults.
var (
	Version = "v0.0.0-dev"
	Commit  = "unknown"
)

// Kubernetes returns the embedded Kubernetes version as upstream reports it
// (stamped into k8s.io/component-base/version by the Makefile).
func Kubernetes() string { return kversion.Get().GitVersion }

// String is what `kubox --version` prints.
func String() string {
	return fmt.Sprintf("kubox version %s (commit %s)\nkubernetes %s\ngo %s %s/%s",
		Version, Commit, Kubernetes(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
