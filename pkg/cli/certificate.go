package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/pki"
)

// certificateCommand reports the certificates of the node's data dir.
func certificateCommand() *ucli.Command {
	var configFile, dataDir, output string
	return &ucli.Command{
		Name:  "certificate",
		Usage: "inspect the certificates kubox keeps",
		Subcommands: []*ucli.Command{{
			Name:         "check",
			Usage:        "list every certificate with its issuer, expiry and days left",
			OnUsageError: usageError,
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &configFile,
					Usage: "config file: its data-dir counts, other keys are ignored"},
				&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &dataDir},
				outputFlag(&output),
			},
			Action: func(c *ucli.Context) error {
				if err := checkOutput(output); err != nil {
					return err
				}
				p, err := dataDirPaths(c, configFile, &dataDir)
				if err != nil {
					return err
				}
				certs, err := pki.Inventory(p.CertDirs()...)
				if err != nil {
					return err
				}
				if len(certs) == 0 {
					return fmt.Errorf("no certificates in %s or %s: give the node's --data-dir", p.TLSDir, p.AgentTLSDir)
				}
				now := time.Now()
				if output == "json" {
					type entry struct {
						pki.CertInfo
						DaysLeft int `json:"daysLeft"`
					}
					var out []entry
					for _, ci := range certs {
						out = append(out, entry{ci, ci.DaysLeft(now)})
					}
					return writeJSON(c.App.Writer, out)
				}
				w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSUBJECT\tISSUER\tNOT AFTER\tDAYS LEFT")
				for _, ci := range certs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", ci.Name, ci.Subject, ci.Issuer, ci.NotAfter.Format(time.RFC3339), ci.DaysLeft(now))
				}
				return w.Flush()
			},
		}, certificateRotate()},
	}
}

// certificateRotate renews certificates now, whether the server runs (its
// components load the new files) or not.
func certificateRotate() *ucli.Command {
	var configFile, dataDir, kubeconfig string
	services := ucli.NewStringSlice()
	return &ucli.Command{
		Name:         "rotate",
		Usage:        "renew the server's certificates now (all, or those --service names), running or stopped",
		OnUsageError: usageError,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &configFile,
				Usage: "the server's config file: its data-dir and write-kubeconfig count, other keys are ignored"},
			&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &dataDir},
			&ucli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, EnvVars: []string{"KUBOX_KUBECONFIG_OUTPUT"}, Destination: &kubeconfig,
				Usage: "the admin kubeconfig to update when the admin certificate is renewed (default " + config.DefaultConfigDir + "/kubox.yaml)"},
			&ucli.StringSliceFlag{Name: "service", Aliases: []string{"s"}, Destination: services, Usage: "a certificate's name as 'kubox certificate check' shows it (repeatable)"},
		},
		Action: func(c *ucli.Context) error {
			p, err := dataDirPaths(c, configFile, &dataDir)
			if err != nil {
				return err
			}
			cp := pki.ControlPlaneFiles(p.TLSDir)
			now := time.Now()
			if _, err := os.Stat(cp.ClientCAKey); err != nil {
				return fmt.Errorf("no cluster CA in %s: run on a server, and give its --data-dir (an agent renews its own certificates)", p.TLSDir)
			}
			cas, err := pki.LoadCAs(cp)
			if err != nil {
				return err
			}
			renewed, err := pki.Renew(cas, services.Value(), now, p.CertDirs()...)
			for _, r := range renewed {
				fmt.Fprintf(c.App.Writer, "renewed %s, valid until %s\n", r.Name, r.NotAfter.UTC().Format(time.RFC3339))
				if r.Name != "client-admin" {
					continue
				}
				if kubeconfig == "" {
					kubeconfig = filepath.Join(config.DefaultConfigDir, "kubox.yaml")
				}
				if kerr := pki.RefreshKubeconfig(kubeconfig, cp.AdminCert, cp.AdminKey); kerr != nil {
					return fmt.Errorf("the admin certificate is renewed but %v; give the admin kubeconfig with --write-kubeconfig", kerr)
				}
				fmt.Fprintf(c.App.Writer, "updated %s\n", kubeconfig)
			}
			return err
		},
	}
}

// dataDirPaths applies the config file's own keys (the data dir among them)
// and derives the data dir's paths.
// dataDir points at the flag's value, which the config file may set.
func dataDirPaths(c *ucli.Context, configFile string, dataDir *string) (paths.Paths, error) {
	if err := applyOwnConfig(c, configFile, "kubox certificate "+c.Command.Name); err != nil {
		return paths.Paths{}, err
	}
	return config.DataPaths(*dataDir, "")
}
