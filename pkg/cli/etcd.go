package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/etcdmember"
	"github.com/kubox-io/kubox/pkg/pki"
)

func etcdCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "etcd",
		Usage: "inspect the servers' embedded etcd (--cluster-init)",
		Subcommands: []*ucli.Command{{
			Name:        "member",
			Usage:       "the etcd members",
			Subcommands: []*ucli.Command{etcdMemberList()},
		}},
	}
}

func etcdMemberList() *ucli.Command {
	var configFile, dataDir string
	return &ucli.Command{
		Name:         "list",
		Aliases:      []string{"ls"},
		Usage:        "list the members, each with its health as it reports it",
		OnUsageError: usageError,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &configFile,
				Usage: "the server's config file: its data-dir counts, other keys are ignored"},
			&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &dataDir, Usage: "the server's data dir"},
		},
		Action: func(c *ucli.Context) error {
			if err := applyOwnConfig(c, configFile, "kubox etcd member list"); err != nil {
				return err
			}
			p, err := config.DataPaths(dataDir, "")
			if err != nil {
				return err
			}
			if !config.HasEmbeddedEtcd(p) {
				return fmt.Errorf("--data-dir %s holds no embedded etcd member: only servers started with --cluster-init, or joined to one with --server, have one", p.DataDir)
			}
			cli, err := etcdmember.Client(pki.EtcdFiles(p.EtcdTLSDir), []string{"https://127.0.0.1:" + strconv.Itoa(config.EtcdClientPort)}, 5*time.Second)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(c.Context, 20*time.Second)
			defer cancel()
			members, err := etcdmember.List(ctx, cli, 3*time.Second)
			if err != nil {
				return fmt.Errorf("%v; is the server running?", err)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tID\tPEER URLS\tCLIENT URLS\tLEARNER\tLEADER\tHEALTH")
			for _, m := range members {
				name := m.Name
				if name == "" {
					name = "(not started)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%t\t%s\n", name, m.HexID(), strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.Learner, m.Leader, m.Health)
			}
			return w.Flush()
		},
	}
}
