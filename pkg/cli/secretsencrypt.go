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
	if ds := o.ds.ForDataDir(p); ds.Kind() == "etcd" {
		endpoints = strings.Split(ds.Endpoint, ",")
		tlsCfg = kinetls.Config{CAFile: ds.CAFile, CertFile: ds.CertFile, KeyFile: ds.KeyFile}
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
		Usage: "show, turn on or off, and rotate the encryption of Secrets at rest (see --secrets-encryption)",
		Subcommands: []*ucli.Command{
			secretsEncryptStatus(), secretsEncryptEnable(), secretsEncryptDisable(),
			secretsEncryptPrepare(), secretsEncryptRotate(), secretsEncryptReencrypt(), secretsEncryptRotateKeys(),
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
				state := "enabled"
				if cfg.Disabled {
					state = "disabled (Secrets are written in plain text; the keys read those they encrypted)"
				}
				fmt.Fprintf(w, "Encryption: %s\nProvider: %s\nStage: %s\n", state, cfg.Provider, cfg.Stage())
				for i, k := range cfg.Keys {
					role := "decrypts"
					if i == 0 && !cfg.Disabled {
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

// secretsEncryptStep is a subcommand that changes the encryption
// configuration file only; the running API server reloads it.
func secretsEncryptStep(name, usage string, step func(c *ucli.Context, path string) (string, error)) *ucli.Command {
	o := &secretsEncryptOptions{}
	return &ucli.Command{
		Name:         name,
		Usage:        usage,
		OnUsageError: usageError,
		Flags:        o.flags(),
		Action: func(c *ucli.Context) error {
			if err := applyOwnConfig(c, o.configFile, "kubox secrets-encrypt "+name); err != nil {
				return err
			}
			p, err := config.DataPaths(o.dataDir, "")
			if err != nil {
				return err
			}
			msg, err := step(c, p.EncryptionConfig)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, msg)
			return nil
		},
	}
}

func secretsEncryptEnable() *ucli.Command {
	var provider string
	cmd := secretsEncryptStep("enable", "encrypt Secrets written from now on (then reencrypt for the stored ones)", func(c *ucli.Context, path string) (string, error) {
		if err := secretsenc.CheckProvider(provider); err != nil {
			return "", err
		}
		cfg, restart, err := secretsenc.Enable(path, provider, time.Now())
		switch {
		case err != nil:
			return "", err
		case restart:
			return fmt.Sprintf("wrote %s with %s key %s: restart kubox server to start encrypting, then run kubox secrets-encrypt reencrypt", path, cfg.Provider, cfg.Keys[0].Name), nil
		}
		return fmt.Sprintf("Secrets written from now on are encrypted with %s (the API server reloads within 10 s); run kubox secrets-encrypt reencrypt for the stored ones", cfg.Keys[0].Name), nil
	})
	cmd.Flags = append(cmd.Flags, &ucli.StringFlag{Name: "secrets-encryption-provider", Value: config.DefaultSecretsEncryptionProvider, Destination: &provider,
		Usage: "aescbc or secretbox, for a new encryption configuration"})
	return cmd
}

func secretsEncryptDisable() *ucli.Command {
	return secretsEncryptStep("disable", "write Secrets in plain text from now on (then reencrypt for the stored ones); the keys stay to read them", func(c *ucli.Context, path string) (string, error) {
		if _, err := secretsenc.Disable(path); err != nil {
			return "", err
		}
		return "Secrets written from now on are stored in plain text (the API server reloads within 10 s); run kubox secrets-encrypt reencrypt for the stored ones", nil
	})
}

func secretsEncryptPrepare() *ucli.Command {
	return secretsEncryptStep("prepare", "add a new key that decrypts only (then rotate)", func(c *ucli.Context, path string) (string, error) {
		return changeKeys(path, func(cfg secretsenc.Config) (secretsenc.Config, string, error) {
			cfg, k, err := secretsenc.Prepare(cfg, time.Now())
			return cfg, fmt.Sprintf("prepared key %s: run kubox secrets-encrypt rotate next", k.Name), err
		})
	})
}

func secretsEncryptRotate() *ucli.Command {
	return secretsEncryptStep("rotate", "make the prepared key the one that encrypts (then reencrypt)", func(c *ucli.Context, path string) (string, error) {
		return changeKeys(path, func(cfg secretsenc.Config) (secretsenc.Config, string, error) {
			cfg, k, err := secretsenc.Rotate(cfg)
			return cfg, fmt.Sprintf("key %s encrypts from now on: run kubox secrets-encrypt reencrypt next", k.Name), err
		})
	})
}

// changeKeys reads the configuration at path, applies change and writes it.
func changeKeys(path string, change func(secretsenc.Config) (secretsenc.Config, string, error)) (string, error) {
	cfg, err := secretsenc.Read(path)
	if err != nil {
		return "", fmt.Errorf("secrets encryption is not enabled (%v): run kubox secrets-encrypt enable first", err)
	}
	cfg, msg, err := change(cfg)
	if err != nil {
		return "", err
	}
	return msg, secretsenc.Write(path, cfg)
}

func secretsEncryptReencrypt() *ucli.Command {
	return secretsEncryptRotation("reencrypt",
		"store every Secret as the configuration says (its first key, or plain text when disabled) and retire unused keys, while the server runs",
		func(c *ucli.Context, r secretsenc.Rotation) (string, error) {
			_, err := r.Reencrypt(c.Context)
			return "every secret is stored as " + r.Path + " says", err
		})
}

// secretsEncryptRotation is a subcommand that re-encrypts the stored
// Secrets through the running server.
func secretsEncryptRotation(name, usage string, run func(*ucli.Context, secretsenc.Rotation) (string, error)) *ucli.Command {
	o := &secretsEncryptOptions{}
	var wait time.Duration
	return &ucli.Command{
		Name:         name,
		Usage:        usage,
		OnUsageError: usageError,
		Flags:        append(o.flags(), timeoutFlag(&wait)),
		Action: func(c *ucli.Context) error {
			r, done, err := o.rotation(c, wait)
			if err != nil {
				return err
			}
			defer done()
			msg, err := run(c, r)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, msg)
			return nil
		},
	}
}

func timeoutFlag(wait *time.Duration) ucli.Flag {
	return &ucli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Destination: wait,
		Usage: "how long the API server may take to load a changed configuration"}
}

// rotation connects to the server's datastore and API for a re-encryption.
func (o *secretsEncryptOptions) rotation(c *ucli.Context, wait time.Duration) (secretsenc.Rotation, func(), error) {
	p, raw, err := o.open(c)
	if err != nil {
		return secretsenc.Rotation{}, nil, err
	}
	api, err := kubeclient.New(p.AdminKubeconfig)
	if err != nil {
		raw.Close()
		return secretsenc.Rotation{}, nil, fmt.Errorf("%v; run on the server", err)
	}
	return secretsenc.Rotation{Path: p.EncryptionConfig, API: api, Raw: raw, Wait: wait, Polled: time.Second,
		Log: func(format string, args ...any) { fmt.Fprintf(c.App.Writer, format+"\n", args...) }}, func() { raw.Close() }, nil
}

func secretsEncryptRotateKeys() *ucli.Command {
	return secretsEncryptRotation("rotate-keys",
		"encrypt every Secret with a new key and retire the old ones, while the server runs (prepare, rotate and reencrypt in one)",
		func(c *ucli.Context, r secretsenc.Rotation) (string, error) {
			k, err := r.RotateKeys(c.Context)
			return "every secret is encrypted with " + k.Name, err
		})
}
