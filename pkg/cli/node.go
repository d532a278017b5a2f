package cli

import (
	"context"
	"fmt"
	"os"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/syssetup"
)

func checkConfigCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "check-config",
		Usage: "check that this host can run a kubox node, and say how to fix what is missing",
		Action: func(c *ucli.Context) error {
			failed := false
			for _, r := range syssetup.Check() {
				mark := "ok  "
				if !r.OK {
					mark = "MISS"
					if r.Fatal {
						mark = "FAIL"
						failed = true
					}
				}
				line := fmt.Sprintf("%s %s", mark, r.Name)
				if r.Info != "" {
					line += " (" + r.Info + ")"
				}
				if !r.OK {
					line += "; fix: " + r.Fix
				}
				fmt.Fprintln(c.App.Writer, line)
			}
			if failed {
				return fmt.Errorf("this host cannot run a kubox node yet; fix the FAIL lines above")
			}
			return nil
		},
	}
}

// Ctr runs containerd's ctr pointed at kubox's containerd (args[0] is the
// program name).
func Ctr(args []string) int {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		p := paths.New(config.DefaultDataDir, config.DefaultConfigDir, paths.DefaultRunDir)
		os.Setenv("CONTAINERD_ADDRESS", p.ContainerdSocket)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	app := ctrapp.New()
	if err := app.Run(context.Background(), append([]string{"ctr"}, args[1:]...)); err != nil {
		fmt.Fprintln(os.Stderr, "ctr:", err)
		return 1
	}
	return 0
}
