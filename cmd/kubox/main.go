// Command kubox is Kubernetes in one binary. It dispatches on the name it was
// called by (kubectl, …) and otherwise runs the kubox command line.
package main

import (
	"os"

	"github.com/kubox-io/kubox/pkg/cli"
)

func main() {
	os.Exit(cli.Main(os.Args))
}
