package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// tokenCommand manages extra join tokens (Kubernetes bootstrap tokens),
// through the admin kubeconfig.
func tokenCommand() *ucli.Command {
	kubeconfig := &ucli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"},
		Value: filepath.Join(config.DefaultConfigDir, "kubox.yaml"), Usage: "admin kubeconfig of the server"}
	return &ucli.Command{
		Name:  "token",
		Usage: "create, list and delete join tokens for agents",
		Subcommands: []*ucli.Command{
			{
				Name:  "create",
				Usage: "print a new join token (K1<CA hash>::<id>.<secret>)",
				Flags: []ucli.Flag{kubeconfig,
					&ucli.DurationFlag{Name: "ttl", Value: 24 * time.Hour, Usage: "how long the token works; 0 for ever"},
					&ucli.StringFlag{Name: "description", Usage: "a note kept with the token"},
				},
				Action: func(c *ucli.Context) error {
					if c.Duration("ttl") < 0 {
						return fmt.Errorf("invalid --ttl %s: give a positive duration, or 0 for a token that never expires", c.Duration("ttl"))
					}
					ca, client, err := tokenClient(c.String("kubeconfig"))
					if err != nil {
						return err
					}
					secret, err := join.CreateBootstrapToken(c.Context, client, c.Duration("ttl"), c.String("description"))
					if err != nil {
						return fmt.Errorf("cannot create a token: %w", err)
					}
					fmt.Fprintln(c.App.Writer, join.FullToken(secret, ca))
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list join tokens (not the server's own)",
				Flags: []ucli.Flag{kubeconfig},
				Action: func(c *ucli.Context) error {
					_, client, err := tokenClient(c.String("kubeconfig"))
					if err != nil {
						return err
					}
					tokens, err := join.ListBootstrapTokens(c.Context, client)
					if err != nil {
						return fmt.Errorf("cannot list tokens: %w", err)
					}
					w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tEXPIRES\tDESCRIPTION")
					for _, t := range tokens {
						expires := "never"
						if !t.Expires.IsZero() {
							expires = t.Expires.UTC().Format(time.RFC3339)
						}
						fmt.Fprintf(w, "%s\t%s\t%s\n", t.ID, expires, t.Description)
					}
					return w.Flush()
				},
			},
			{
				Name:      "delete",
				Usage:     "delete join tokens by ID",
				ArgsUsage: "ID...",
				Flags:     []ucli.Flag{kubeconfig},
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 {
						return fmt.Errorf("give the ID of the token to delete (see 'kubox token list')")
					}
					_, client, err := tokenClient(c.String("kubeconfig"))
					if err != nil {
						return err
					}
					for _, id := range c.Args().Slice() {
						if err := join.DeleteBootstrapToken(c.Context, client, id); err != nil {
							return fmt.Errorf("cannot delete token %s: %w", id, err)
						}
						fmt.Fprintf(c.App.Writer, "deleted token %s\n", id)
					}
					return nil
				},
			},
		},
	}
}

// tokenClient opens the API and returns the server CA the kubeconfig
// trusts, which the printed token pins.
func tokenClient(kubeconfig string) ([]byte, kubernetes.Interface, error) {
	rc, err := kubeclient.Config(kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("%v; run on the server as root, or give --kubeconfig", err)
	}
	ca := rc.TLSClientConfig.CAData
	if len(ca) == 0 && rc.TLSClientConfig.CAFile != "" {
		if ca, err = os.ReadFile(rc.TLSClientConfig.CAFile); err != nil {
			return nil, nil, err
		}
	}
	if len(ca) == 0 {
		return nil, nil, fmt.Errorf("kubeconfig %s names no certificate authority; use the admin kubeconfig kubox wrote", kubeconfig)
	}
	client, err := kubernetes.NewForConfig(rc)
	return ca, client, err
}
