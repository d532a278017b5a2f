package cli

import (
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/k8s/embedded"
)

func kubectlCommand() *ucli.Command {
	return &ucli.Command{
		Name:            "kubectl",
		Usage:           "run the embedded kubectl",
		SkipFlagParsing: true,
		Action: func(c *ucli.Context) error {
			os.Exit(Kubectl(append([]string{"kubectl"}, c.Args().Slice()...)))
			return nil
		},
	}
}

// Kubectl runs the embedded kubectl. Like k3s, it talks to the local server
// by default: without KUBECONFIG, --kubeconfig or ~/.kube/config it uses the
// admin kubeconfig kubox wrote.
func Kubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" && !hasFlag(args, "--kubeconfig") {
		home, _ := os.UserHomeDir()
		if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err != nil {
			admin := filepath.Join(config.DefaultConfigDir, "kubox.yaml")
			if _, err := os.Stat(admin); err == nil {
				os.Setenv("KUBECONFIG", admin)
			}
		}
	}
	embedded.Kubectl(args)
	return 0
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || len(a) > len(flag) && a[:len(flag)+1] == flag+"=" {
			return true
		}
	}
	return false
}
