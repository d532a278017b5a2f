package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/flock"
	"github.com/kubox-io/kubox/pkg/snapshot"
)

// snapshotOptions are what every snapshot subcommand reads from its flags
// and from the server's config file (keys of other commands ignored).
type snapshotOptions struct {
	configFile, dataDir, nodeName, dir string
	ds                                 config.Datastore
	s3                                 config.S3Options
}

// s3Flags are the --snapshot-s3-* flags of the server and of every
// snapshot subcommand (k3s's --etcd-s3-* names accepted).
func s3Flags(o *config.S3Options) []ucli.Flag {
	alias := func(name string) []string { return []string{"etcd-s3" + strings.TrimPrefix(name, "snapshot-s3")} }
	str := func(name string, dest *string, usage string, env ...string) ucli.Flag {
		return &ucli.StringFlag{Name: name, Aliases: alias(name), Destination: dest, Usage: usage, EnvVars: env}
	}
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "snapshot-s3", Aliases: alias("snapshot-s3"), Destination: &o.Enable, Usage: "also keep snapshots in an S3 bucket"},
		str("snapshot-s3-endpoint", &o.Settings.Endpoint, "S3 endpoint, host[:port] (default "+config.DefaultS3Endpoint+")"),
		str("snapshot-s3-endpoint-ca", &o.Settings.EndpointCA, "CA bundle for the S3 endpoint"),
		&ucli.BoolFlag{Name: "snapshot-s3-skip-ssl-verify", Aliases: alias("snapshot-s3-skip-ssl-verify"), Destination: &o.Settings.SkipVerify, Usage: "do not verify the S3 endpoint's certificate"},
		&ucli.BoolFlag{Name: "snapshot-s3-insecure", Aliases: alias("snapshot-s3-insecure"), Destination: &o.Settings.Insecure, Usage: "plain http to the S3 endpoint"},
		str("snapshot-s3-access-key", &o.Settings.AccessKey, "S3 access key", "AWS_ACCESS_KEY_ID"),
		str("snapshot-s3-secret-key", &o.Settings.SecretKey, "S3 secret key", "AWS_SECRET_ACCESS_KEY"),
		str("snapshot-s3-bucket", &o.Settings.Bucket, "S3 bucket"),
		str("snapshot-s3-region", &o.Settings.Region, "S3 region (default "+config.DefaultS3Region+")"),
		str("snapshot-s3-folder", &o.Settings.Folder, "folder in the bucket"),
		&ucli.DurationFlag{Name: "snapshot-s3-timeout", Aliases: alias("snapshot-s3-timeout"), Destination: &o.Settings.Timeout, Usage: "how long one S3 operation may take (default 5m)"},
	}
}

func (o *snapshotOptions) flags() []ucli.Flag {
	f := []ucli.Flag{
		&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &o.configFile,
			Usage: "the server's config file: its data-dir, datastore-*, node-name and snapshot-dir count, other keys are ignored"},
		&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &o.dataDir, Usage: "the server's data dir"},
	}
	f = append(f, datastoreFlags(&o.ds)...)
	f = append(f,
		&ucli.StringFlag{Name: "node-name", Destination: &o.nodeName, Usage: "names the snapshots (default: the host name)"},
		&ucli.StringFlag{Name: "snapshot-dir", Aliases: []string{"etcd-snapshot-dir", "dir"}, Destination: &o.dir, Usage: "where snapshots are kept (default <data-dir>/server/db/snapshots)"},
	)
	return append(f, s3Flags(&o.s3)...)
}

// datastoreFlags are the server's datastore flags, for commands that reach
// the datastore themselves.
func datastoreFlags(ds *config.Datastore) []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "datastore-endpoint", EnvVars: []string{"KUBOX_DATASTORE_ENDPOINT"}, Destination: &ds.Endpoint, Usage: "as given to kubox server; empty for SQLite"},
		&ucli.StringFlag{Name: "datastore-cafile", Destination: &ds.CAFile, Usage: "CA bundle for etcd"},
		&ucli.StringFlag{Name: "datastore-certfile", Destination: &ds.CertFile, Usage: "client certificate for etcd"},
		&ucli.StringFlag{Name: "datastore-keyfile", Destination: &ds.KeyFile, Usage: "client key for etcd"},
	}
}

// store reads the config file under the command line and returns the
// node's snapshot store.
func (o *snapshotOptions) store(c *ucli.Context) (snapshot.Store, error) {
	if err := applyOwnConfig(c, o.configFile, "kubox snapshot "+c.Command.Name); err != nil {
		return snapshot.Store{}, err
	}
	p, err := config.DataPaths(o.dataDir, "")
	if err != nil {
		return snapshot.Store{}, err
	}
	s, err := config.SnapshotOptions{Dir: o.dir, S3: o.s3}.Snapshots(p)
	if err != nil {
		return snapshot.Store{}, err
	}
	node, err := config.NodeName(o.nodeName)
	if err != nil {
		return snapshot.Store{}, err
	}
	return snapshot.Store{Dir: s.Dir, Node: node, Datastore: o.ds.ForDataDir(p), Paths: p, S3: s.S3}, nil
}

func snapshotCommand() *ucli.Command {
	return &ucli.Command{
		Name:    "snapshot",
		Aliases: []string{"etcd-snapshot"},
		Usage:   "save, list, prune and restore snapshots of the cluster state (SQLite or etcd)",
		Subcommands: []*ucli.Command{
			snapshotSave(), snapshotList(), snapshotDelete(), snapshotPrune(), snapshotRestore(),
		},
	}
}

func snapshotSave() *ucli.Command {
	o := &snapshotOptions{}
	var name string
	return &ucli.Command{
		Name:         "save",
		Usage:        "take a snapshot now, while the server runs",
		OnUsageError: usageError,
		Flags: append(o.flags(), &ucli.StringFlag{Name: "name", Value: config.DefaultSnapshotName, Destination: &name,
			Usage: "prefix of the snapshot's name (<name>-<node>-<unix time>)"}),
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q; give the name with --name", c.Args().First())
			}
			s, err := o.store(c)
			if err != nil {
				return err
			}
			m, err := s.Save(c.Context, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "saved snapshot %s (%d bytes, sha256 %s) in %s\n", m.Name, m.Size, m.SHA256, s.Dir)
			if s.S3 != nil {
				fmt.Fprintf(c.App.Writer, "uploaded to s3://%s\n", strings.Trim(s.S3.Bucket+"/"+s.S3.Folder, "/"))
			}
			return nil
		},
	}
}

func snapshotList() *ucli.Command {
	o := &snapshotOptions{}
	var output string
	return &ucli.Command{
		Name:         "ls",
		Aliases:      []string{"list"},
		Usage:        "list snapshots",
		OnUsageError: usageError,
		Flags:        append(o.flags(), outputFlag(&output)),
		Action: func(c *ucli.Context) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			s, err := o.store(c)
			if err != nil {
				return err
			}
			list, err := s.List(c.Context)
			if err != nil {
				return err
			}
			if output == "json" {
				type entry struct {
					snapshot.Meta
					Location string `json:"location"`
				}
				out := []entry{}
				for _, m := range list {
					out = append(out, entry{m, m.Location})
				}
				return writeJSON(c.App.Writer, out)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tLOCATION\tSIZE\tCREATED")
			for _, m := range list {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", m.Name, m.Location, m.Size, m.Created.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}

func snapshotDelete() *ucli.Command {
	o := &snapshotOptions{}
	return &ucli.Command{
		Name:         "delete",
		Aliases:      []string{"rm"},
		Usage:        "delete snapshots by name",
		ArgsUsage:    "NAME...",
		OnUsageError: usageError,
		Flags:        o.flags(),
		Action: func(c *ucli.Context) error {
			if c.NArg() == 0 {
				return errors.New("give the name of the snapshot to delete (see 'kubox snapshot ls')")
			}
			s, err := o.store(c)
			if err != nil {
				return err
			}
			for _, n := range c.Args().Slice() {
				if err := s.Delete(c.Context, n); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted snapshot %s\n", n)
			}
			return nil
		},
	}
}

func snapshotPrune() *ucli.Command {
	o := &snapshotOptions{}
	var name string
	var keep int
	return &ucli.Command{
		Name:         "prune",
		Usage:        "delete this node's oldest snapshots with a name prefix, keeping the newest",
		OnUsageError: usageError,
		Flags: append(o.flags(),
			&ucli.StringFlag{Name: "name", Value: config.DefaultSnapshotName, Destination: &name, Usage: "prefix of the snapshots to prune"},
			&ucli.IntFlag{Name: "snapshot-retention", Aliases: []string{"retention", "etcd-snapshot-retention"}, Value: config.DefaultSnapshotRetention, Destination: &keep,
				Usage: "how many to keep"}),
		Action: func(c *ucli.Context) error {
			s, err := o.store(c)
			if err != nil {
				return err
			}
			if err := config.CheckSnapshotName(name); err != nil {
				return err
			}
			deleted, err := s.Prune(c.Context, name, keep)
			for _, d := range deleted {
				fmt.Fprintf(c.App.Writer, "deleted snapshot %s\n", d)
			}
			return err
		},
	}
}

func snapshotRestore() *ucli.Command {
	o := &snapshotOptions{}
	return &ucli.Command{
		Name:         "restore",
		Usage:        "replace the stopped server's SQLite datastore with a snapshot (the current one is kept aside)",
		ArgsUsage:    "FILE",
		OnUsageError: usageError,
		Flags:        o.flags(),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return errors.New("give the snapshot file to restore (see 'kubox snapshot ls')")
			}
			s, err := o.store(c)
			if err != nil {
				return err
			}
			if s.Datastore.Etcd != nil {
				return fmt.Errorf("the data dir holds an etcd member: restore with kubox server --cluster-reset --cluster-reset-restore-path %s", c.Args().First())
			}
			if kind := s.Datastore.Kind(); kind != "sqlite" {
				return fmt.Errorf("kubox restores the embedded SQLite datastore; restore a %s datastore with its own tools, then start kubox", kind)
			}
			// A path, or a name as ls shows it (fetched from S3 if only there).
			file, err := s.Fetch(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(s.Paths.ServerDir, 0o700); err != nil {
				return fmt.Errorf("cannot use --data-dir %s: %w", s.Paths.DataDir, err)
			}
			unlock, err := flock.TryExclusive(s.Paths.ServerLock)
			if errors.Is(err, flock.ErrHeld) {
				return fmt.Errorf("the kubox server on --data-dir %s is running: stop it first (systemctl stop kubox), or start it with --cluster-reset --cluster-reset-restore-path %s", s.Paths.DataDir, file)
			}
			if err != nil {
				return fmt.Errorf("cannot lock --data-dir %s: %w", s.Paths.DataDir, err)
			}
			defer unlock()
			r, err := snapshot.RestoreSQLite(c.Context, file, s.Datastore.SQLiteFile(s.Paths), time.Now())
			if err != nil {
				return err
			}
			kept := "there was none"
			if r.PreRestore != "" {
				kept = "it is in " + r.PreRestore
			}
			fmt.Fprintf(c.App.Writer, "restored %s (revision %d); previous database: %s; start the server now\n", file, r.Revision, kept)
			return nil
		},
	}
}
