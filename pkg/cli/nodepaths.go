package cli

import (
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

// nodeDirFlags are the flags that locate a node's data and run dirs, with
// their environment variables; killall takes them on its command line.
func nodeDirFlags(configFile, dataDir, runDir *string) []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: configFile,
			Usage: "config file of the local kubox: its data-dir and run-dir count, other keys are ignored"},
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: dataDir},
		&ucli.StringFlag{Name: "run-dir", Destination: runDir, Usage: "as given to kubox server (default derived from --data-dir)"},
	}
}

// nodePaths finds the local node's paths for the clients whose command
// lines are their own (ctr, crictl): from KUBOX_CONFIG_FILE, KUBOX_DATA_DIR
// and the config file, as a service started by install.sh finds them.
func nodePaths() (paths.Paths, error) {
	var configFile, dataDir, runDir string
	var p paths.Paths
	app := &ucli.App{
		Name:           "kubox",
		Writer:         io.Discard,
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*ucli.Context, error) {},
		Flags:          nodeDirFlags(&configFile, &dataDir, &runDir),
		Action: func(c *ucli.Context) error {
			if err := applyOwnConfig(c, configFile, "kubox"); err != nil {
				return err
			}
			var err error
			p, err = config.DataPaths(dataDir, runDir)
			return err
		},
	}
	if err := app.Run([]string{"kubox"}); err != nil {
		return paths.Paths{}, err
	}
	return p, nil
}
