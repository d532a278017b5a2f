package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/agent"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/configfile"
	"github.com/kubox-io/kubox/pkg/logging"
)

// agentCommand runs a node that joins a server: containerd, kubelet,
// kube-proxy and flannel, with no control plane.
func agentCommand() *ucli.Command {
	o := &config.JoinOptions{}
	nodeOpts, nodeVals := nodeFlags(&o.Node)
	var configFile string
	return &ucli.Command{
		Name:         "agent",
		Usage:        "run a node that joins a kubox server",
		OnUsageError: usageError,
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &configFile,
				Usage: "config file with flags as YAML keys (config.yaml.d/*.yaml beside it are read too)"},
			&ucli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"KUBOX_URL"}, Destination: &o.ServerURL, Usage: "the server to join, https://<address>:6443"},
			&ucli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"KUBOX_TOKEN"}, Destination: &o.Token, Usage: "join token for the first join (the server's <data-dir>/server/token, or one from 'kubox token create'); a node that joined renews with its own certificate"},
			&ucli.StringFlag{Name: "token-file", EnvVars: []string{"KUBOX_TOKEN_FILE"}, Destination: &o.TokenFile, Usage: "file holding the join token"},
			&ucli.IntFlag{Name: "lb-server-port", Value: config.DefaultLBServerPort, Destination: &o.LBServerPort, Usage: "loopback port of the agent's API load balancer"},
			&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &o.DataDir, Usage: "where kubox keeps its state"},
			&ucli.StringFlag{Name: "run-dir", Destination: &o.RunDir, Usage: "runtime state such as sockets (default /run/kubox, or one derived from --data-dir)"},
			&ucli.StringFlag{Name: "profile", Destination: &o.Node.Profile,
				Usage: "hardening profile: " + strings.Join(config.Profiles, ", ") + " (on a node: --protect-kernel-defaults)"},
			&ucli.BoolFlag{Name: "debug", EnvVars: []string{"KUBOX_DEBUG"}, Destination: &o.Debug, Usage: "debug logging"},
			&ucli.IntFlag{Name: "v", Destination: &o.Verbosity, Usage: "log verbosity of the Kubernetes components (klog -v)"},
			&ucli.StringFlag{Name: "log-format", Value: config.LogFormatText, EnvVars: []string{"KUBOX_LOG_FORMAT"}, Destination: &o.LogFormat,
				Usage: "text or json: how log lines are written; each names its component (json: time, level, component, msg)"},
		}, nodeOpts...),
		Action: func(c *ucli.Context) error {
			files, err := configfile.Files(configFile, c.IsSet("config"))
			if err != nil {
				return err
			}
			if err := configfile.Apply(c, "kubox agent", files); err != nil {
				return err
			}
			nodeVals.into(&o.Node)
			j, err := o.Join()
			if err != nil {
				return err
			}
			log := logging.NewFormat(os.Stderr, j.Verbosity, j.Debug, logging.Format(j.LogFormat))
			log.InstallGlobal()
			// Whatever still logs after the command returns (an upstream
			// goroutine winding down) must not follow its last line.
			defer log.Close()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := agent.Run(ctx, j, log); err != nil {
				return err
			}
			log.Infof("stopped")
			return nil
		},
	}
}
