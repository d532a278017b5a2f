package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	kinetls "github.com/k3s-io/kine/pkg/tls"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/secretsenc"
)

// secretsEncryptOptions are what both subcommands read: the server's data
// dir and datastore, from flags or its config file.
type secretsEncryptOptions struct {
	configFile, dataDir string
	ds                  config.Datastore
}

func (o *secretsEncryptOptions) flags() []ucli.Flag {
	return append([]ucli.Flag{
		&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &o.configFile,
			Usage: "the server's config file: its data-dir and datastore-* count, other keys are ignored"},
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &o.dataDir, Usage: "the server's data dir"},
	}, datastoreFlags(&o.ds)...)
}

// open reads the config file and connects to the server's datastore
// directly (kine's socket in the data dir, or etcd).
func (o *secretsEncryptOptions) open(c *ucli.Context) (paths.Paths, *clientv3.Client, error) {
	if err := applyOwnConfig(c, o.configFile, "kubox secrets-encrypt "+c.Command.Name); err != nil {
		return paths.Paths{}, nil, err
	}
	p, err := config.DataPaths(o.dataDir, "")
	if err != nil {
		return paths.Paths{}, nil, err
	}
	endpoints := []string{"unix://" + p.KineSocket}
	var tlsCfg kinetls.Config
	if o.ds.Kind() == "etcd" {
		endpoints = strings.Split(o.ds.Endpoint, ",")
		tlsCfg = kinetls.Config{CAFile: o.ds.CAFile, CertFile: o.ds.CertFile, KeyFile: o.ds.KeyFile}
	}
	tc, err := tlsCfg.ClientConfig()
	if err != nil {
		return p, nil, fmt.Errorf("cannot load the datastore's TLS files: %w", err)
	}
	raw, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		return p, nil, fmt.Errorf("cannot reach the datastore: %w; run on the server while it runs", err)
	}
	return p, raw, nil
}

func secretsEncryptCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "secrets-encrypt",
		Usage: "show and rotate the encryption of Secrets at rest (see --secrets-encryption)",
		Subcommands: []*ucli.Command{
			secretsEncryptStatus(), secretsEncryptRotateKeys(),
		},
	}
}

func secretsEncryptStatus() *ucli.Command {
	o := &secretsEncryptOptions{}
	return &ucli.Command{
		Name:         "status",
		Usage:        "the provider, the keys, and how the stored Secrets are encrypted",
		OnUsageError: usageError,
		Flags:        o.flags(),
		Action: func(c *ucli.Context) error {
			p, raw, err := o.open(c)
			if err != nil {
				return err
			}
			defer raw.Close()
			w := c.App.Writer
			cfg, err := secretsenc.Read(p.EncryptionConfig)
			if err != nil {
				fmt.Fprintln(w, "Encryption: disabled")
			} else {
				fmt.Fprintf(w, "Encryption: enabled\nProvider: %s\n", cfg.Provider)
				for i, k := range cfg.Keys {
					role := "decrypts"
					if i == 0 {
						role = "encrypts"
					}
					fmt.Fprintf(w, "Key: %s (%s)\n", k.Name, role)
				}
			}
			counts, err := secretsenc.Census(c.Context, raw)
			if err != nil {
				return fmt.Errorf("%v; is the server running on --data-dir %s?", err, p.DataDir)
			}
			var keys []string
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				name := k
				if k == "" {
					name = "not encrypted"
				}
				fmt.Fprintf(w, "Secrets %s: %d\n", name, counts[k])
			}
			return nil
		},
	}
}

func secretsEncryptRotateKeys() *ucli.Command {
	o := &secretsEncryptOptions{}
	var wait time.Duration
	return &ucli.Command{
		Name:         "rotate-keys",
		Usage:        "encrypt every Secret with a new key and retire the old ones, while the server runs",
		OnUsageError: usageError,
		Flags: append(o.flags(), &ucli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Destination: &wait,
			Usage: "how long the API server may take to start using the new key"}),
		Action: func(c *ucli.Context) error {
			p, raw, err := o.open(c)
			if err != nil {
				return err
			}
			defer raw.Close()
			api, err := kubeclient.New(p.AdminKubeconfig)
			if err != nil {
				return fmt.Errorf("%v; run on the server", err)
			}
			r := secretsenc.Rotation{Path: p.EncryptionConfig, API: api, Raw: raw, Wait: wait, Polled: time.Second,
				Log: func(format string, args ...any) { fmt.Fprintf(c.App.Writer, format+"\n", args...) }}
			k, err := r.RotateKeys(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "every secret is encrypted with %s\n", k.Name)
			return nil
		},
	}
}
