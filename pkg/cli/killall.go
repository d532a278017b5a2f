package cli

import (
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/agent"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/killall"
	"github.com/kubox-io/kubox/pkg/logging"
)

func killallCommand() *ucli.Command {
	var dataDir, runDir string
	return &ucli.Command{
		Name:         "killall",
		Usage:        "stop kubox and every container it started, and remove its mounts, interfaces, iptables chains and cgroups (cluster state is kept)",
		OnUsageError: usageError,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &dataDir},
			&ucli.StringFlag{Name: "run-dir", Destination: &runDir, Usage: "as given to kubox server (default derived from --data-dir)"},
		},
		Action: func(c *ucli.Context) error {
			abs, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			if runDir == "" {
				runDir = paths.RunDirFor(abs, config.DefaultDataDir)
			}
			p := paths.New(abs, config.DefaultConfigDir, runDir)
			log := logging.New(os.Stderr, 0, false)
			killall.StopKubox(func(args []string) bool { return dataDirOf(args) == abs }, 30*time.Second, log)
			return killall.Run(p, agent.CgroupName, log)
		},
	}
}

// dataDirOf finds the --data-dir a kubox command line uses.
func dataDirOf(args []string) string {
	dir, ok := paths.DataDirArg(args)
	if !ok {
		dir = config.DefaultDataDir
	}
	abs, _ := filepath.Abs(dir)
	return abs
}
