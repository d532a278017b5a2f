package cli

import (
	"fmt"
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
				if err := applyOwnConfig(c, configFile, "kubox certificate check"); err != nil {
					return err
				}
				abs, err := filepath.Abs(dataDir)
				if err != nil {
					return err
				}
				p := paths.New(abs, config.DefaultConfigDir, "")
				certs, err := pki.Inventory(p.TLSDir, p.AgentTLSDir)
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
		}},
	}
}
