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
	var configFile, dataDir, runDir string
	return &ucli.Command{
		Name:         "killall",
		Usage:        "stop kubox and every container it started, and remove its mounts, interfaces, iptables chains and cgroups (cluster state is kept)",
		OnUsageError: usageError,
		Flags:        nodeDirFlags(&configFile, &dataDir, &runDir),
		Action: func(c *ucli.Context) error {
			// The data dir may be set only in config.yaml, as install.sh's
			// service does it.
			given := c.IsSet("data-dir") // on the command line or in KUBOX_DATA_DIR
			if err := applyOwnConfig(c, configFile, "kubox killall"); err != nil {
				return err
			}
			p, err := config.DataPaths(dataDir, runDir)
			if err != nil {
				return err
			}
			abs := p.DataDir
			log := logging.New(os.Stderr, 0, false)
			killall.StopKubox(func(args []string) bool {
				if dir, ok := paths.DataDirArg(args); ok {
					return absPath(dir) == abs
				}
				// A kubox started without --data-dir read it from the same
				// config file as this killall, unless this one was told.
				if !given {
					return true
				}
				return abs == absPath(config.DefaultDataDir)
			}, 30*time.Second, log)
			return killall.Run(p, agent.CgroupName, log)
		},
	}
}

// absPath is path made absolute, or path when that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
