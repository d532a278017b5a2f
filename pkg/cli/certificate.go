package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
		Usage: "inspect, renew and replace the certificates kubox keeps",
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
		}, certificateRotate(), certificateRotateCA()},
	}
}

// serverFlags are the flags of the commands that change a server's
// certificates: where its data dir and its admin kubeconfig are.
type serverFlags struct {
	configFile, dataDir, kubeconfig string
}

func (f *serverFlags) flags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &f.configFile,
			Usage: "the server's config file: its data-dir and write-kubeconfig count, other keys are ignored"},
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &f.dataDir},
		&ucli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, EnvVars: []string{"KUBOX_KUBECONFIG_OUTPUT"}, Destination: &f.kubeconfig,
			Usage: "the admin kubeconfig to update when the admin certificate is renewed (default " + config.DefaultConfigDir + "/kubox.yaml)"},
	}
}

// controlPlane is the server's data dir and its certificate files, once
// its client CA is known to be there.
func (f *serverFlags) controlPlane(c *ucli.Context) (paths.Paths, pki.ControlPlane, error) {
	p, err := dataDirPaths(c, f.configFile, &f.dataDir)
	if err != nil {
		return p, pki.ControlPlane{}, err
	}
	cp := pki.ControlPlaneFiles(p.TLSDir)
	if _, err := os.Stat(cp.ClientCAKey); err != nil {
		return p, cp, fmt.Errorf("no cluster CA in %s: run on a server, and give its --data-dir (an agent renews its own certificates)", p.TLSDir)
	}
	return p, cp, nil
}

// refreshAdminKubeconfig puts the renewed admin certificate into the
// user's admin kubeconfig and, when caPEM is given, makes it trust caPEM.
func (f *serverFlags) refreshAdminKubeconfig(c *ucli.Context, cp pki.ControlPlane, caPEM []byte) error {
	if f.kubeconfig == "" {
		f.kubeconfig = filepath.Join(config.DefaultConfigDir, "kubox.yaml")
	}
	err := pki.RefreshKubeconfig(f.kubeconfig, cp.AdminCert, cp.AdminKey)
	if err == nil && caPEM != nil {
		err = pki.RefreshKubeconfigCA(f.kubeconfig, caPEM)
	}
	if err != nil {
		return fmt.Errorf("the admin certificate is renewed but %v; give the admin kubeconfig with --write-kubeconfig", err)
	}
	fmt.Fprintf(c.App.Writer, "updated %s\n", f.kubeconfig)
	return nil
}

// certificateRotate renews certificates now, whether the server runs (its
// components load the new files) or not.
func certificateRotate() *ucli.Command {
	var f serverFlags
	services := ucli.NewStringSlice()
	return &ucli.Command{
		Name:         "rotate",
		Usage:        "renew the server's certificates now (all, or those --service names), running or stopped",
		OnUsageError: usageError,
		Flags: append(f.flags(),
			&ucli.StringSliceFlag{Name: "service", Aliases: []string{"s"}, Destination: services, Usage: "a certificate's name as 'kubox certificate check' shows it (repeatable)"}),
		Action: func(c *ucli.Context) error {
			p, cp, err := f.controlPlane(c)
			if err != nil {
				return err
			}
			cas, err := pki.LoadCAs(cp)
			if err != nil {
				return err
			}
			renewed, err := pki.Renew(cas, services.Value(), time.Now(), p.CertDirs()...)
			for _, r := range renewed {
				fmt.Fprintf(c.App.Writer, "renewed %s, valid until %s\n", r.Name, r.NotAfter.UTC().Format(time.RFC3339))
				if r.Name == "client-admin" {
					if kerr := f.refreshAdminKubeconfig(c, cp, nil); kerr != nil {
						return kerr
					}
				}
			}
			return err
		},
	}
}

// certificateRotateCA replaces the cluster's CAs with the user's, and
// issues every certificate the server keeps again with them. The CA files
// keep the replaced CAs, so what they signed stays valid; the new CAs'
// cross-signatures make what they sign valid for nodes that trust only the
// old ones, until those renew.
func certificateRotateCA() *ucli.Command {
	var f serverFlags
	var dir string
	var force bool
	return &ucli.Command{
		Name:         "rotate-ca",
		Usage:        "replace the cluster's CAs with those in --path, cross-signed by the current ones; then restart the server",
		OnUsageError: usageError,
		Flags: append(f.flags(),
			&ucli.StringFlag{Name: "path", Destination: &dir,
				Usage: "directory of the new CAs, named as in <data-dir>/server/tls: server-ca.crt and .key, client-ca.*, request-header-ca.*, kubelet-ca.*; each .crt holds the new CA, then its certificate signed by the current CA"},
			&ucli.BoolFlag{Name: "force", Destination: &force,
				Usage: "accept CAs that are not cross-signed by the current ones: every node must join again"}),
		Action: func(c *ucli.Context) error {
			if dir == "" {
				return fmt.Errorf("give the directory of the new CAs with --path")
			}
			p, cp, err := f.controlPlane(c)
			if err != nil {
				return err
			}
			now := time.Now()
			newCAs, err := pki.CheckNewCAs(cp, dir, force, now)
			if err != nil {
				return err
			}
			backup := filepath.Join(p.TLSDir, "ca-backup-"+now.UTC().Format("20060102T150405Z"))
			if err := pki.RotateCAs(newCAs, backup); err != nil {
				return err
			}
			serverCA := false
			for _, n := range newCAs {
				if n.InPlace {
					fmt.Fprintf(c.App.Writer, "the %s is %s already\n", n.Name, n.CertFile)
					continue
				}
				serverCA = serverCA || n.Name == "server CA"
				fmt.Fprintf(c.App.Writer, "replaced the %s with %s; the old one stays trusted, and is kept in %s\n", n.Name, n.CertFile, backup)
			}
			cas, err := pki.LoadCAs(cp)
			if err != nil {
				return err
			}
			renewed, err := pki.Renew(cas, nil, now, p.TLSDir, p.AgentTLSDir)
			if err != nil {
				return err
			}
			var names []string
			for _, r := range renewed {
				names = append(names, r.Name)
			}
			fmt.Fprintf(c.App.Writer, "issued again with the new CAs: %s\n", strings.Join(names, ", "))
			// The CAs are replaced by now: the rest is still said.
			if err := f.refreshAdminKubeconfig(c, cp, cas[0].CertPEM); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", err)
			}
			if force {
				fmt.Fprintln(c.App.Writer, "the new CAs are not cross-signed: join every other node again with the new token once the server restarted")
			} else {
				fmt.Fprintln(c.App.Writer, "joined nodes take the new CAs and certificates at their next renewal")
			}
			if serverCA {
				fmt.Fprintf(c.App.Writer, "the join token changes with the server CA: new nodes take it from %s once the server restarted\n", p.TokenFile)
			}
			fmt.Fprintln(c.App.Writer, "restart kubox on this server to finish (running pods are left alone)")
			return nil
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
