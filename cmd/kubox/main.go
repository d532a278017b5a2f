// Command kubox is Kubernetes in one binary. It dispatches on the name it was
// called by (kubectl, …) and otherwise runs the kubox command line.
package main

import (
	"fmt"
	"os"

	"github.com/kubox-io/kubox/pkg/cli"
)

func main() {
	if err := servePprof(); err != nil {
		fmt.Fprintln(os.Stderr, "kubox:", err)
		os.Exit(1)
	}
	os.Exit(cli.Main(os.Args))
}
