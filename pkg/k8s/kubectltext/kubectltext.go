// Package kubectltext keeps kubectl's message catalogue out of every kubox
// process that is not kubectl. kubectl's command packages translate their
// help texts in package variables, so the first of them to initialize
// loads the catalogue (an in-memory zip of the .po files, parsed): about
// 4 MB and tens of milliseconds in the server, the agent and the
// containerd child alike, which never print them. Go initializes this
// package before those (it needs only the i18n package, and its import
// path sorts first), and it tells i18n to load the catalogue only when the
// process runs kubectl; elsewhere the texts stay the English originals
// they are written in.
package kubectltext

import (
	"os"
	"path/filepath"

	"k8s.io/kubectl/pkg/util/i18n"
)

func init() {
	if runsKubectl(os.Args) {
		return // upstream's loader, unchanged
	}
	_ = i18n.SetLoadTranslationsFunc(func() error { return nil })
}

// runsKubectl tells whether the command line is kubectl's: the kubectl
// link, or `kubox kubectl`.
func runsKubectl(args []string) bool {
	if len(args) == 0 {
		return false
	}
	if filepath.Base(args[0]) == "kubectl" {
		return true
	}
	return len(args) > 1 && args[1] == "kubectl"
}
