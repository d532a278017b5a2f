// Package cli is kubox's command line: the urfave/cli commands, their flags
// bound to per-invocation option structs, config files merged under the
// command line, and the multi-call dispatch to the clients (the embedded
// kubectl and ctr, the bundled crictl).
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/configfile"
	"github.com/kubox-io/kubox/pkg/containerd/daemon"

	"github.com/kubox-io/kubox/pkg/version"
)

// Main runs kubox with args (args[0] is the program name) and returns the
// process exit code.
func Main(args []string) int {
	switch filepath.Base(args[0]) {
	case "kubectl":
		return Kubectl(args)
	case "ctr":
		return Ctr(args)
	case "crictl":
		return Crictl(args)
	}
	// Subcommands with flags of their own bypass kubox's flag parsing.
	if len(args) > 1 {
		switch args[1] {
		case "containerd":
			return daemon.Main(args[1:])
		case "ctr":
			return Ctr(args[1:])
		case "crictl":
			return Crictl(args[1:])
		}
	}
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "kubox: %s\n", oneLine(err))
		return 1
	}
	return 0
}

func newApp(stdout, stderr io.Writer) *ucli.App {
	app := &ucli.App{
		Name:        "kubox",
		Usage:       "Kubernetes in one binary",
		HideVersion: true,
		// kubox --generate-bash-completion lists candidates for the
		// scripts of `kubox completion`.
		EnableBashCompletion: true,
		Writer:               stdout,
		ErrWriter:            stderr,
		ExitErrHandler:       func(*ucli.Context, error) {}, // errors are printed once, by run
		OnUsageError:         usageError,
		Flags:                []ucli.Flag{&ucli.BoolFlag{Name: "version", Usage: "print the kubox, Kubernetes and commit versions"}},
		Action: func(c *ucli.Context) error {
			if c.Bool("version") {
				fmt.Fprintln(c.App.Writer, version.String())
				return nil
			}
			if c.Args().Present() {
				return fmt.Errorf("unknown command %q; run 'kubox help' for the list", c.Args().First())
			}
			return ucli.ShowAppHelp(c)
		},
		Commands: []*ucli.Command{
			serverCommand(),
			agentCommand(),
			kubectlCommand(),
			checkConfigCommand(),
			killallCommand(),
			tokenCommand(),
			snapshotCommand(),
			etcdCommand(),
			certificateCommand(),
			secretsEncryptCommand(),
			completionCommand(),
			{Name: "containerd", Usage: "run the embedded containerd (kubox starts it itself)", SkipFlagParsing: true},
			{Name: "ctr", Usage: "run containerd's ctr against kubox's containerd", SkipFlagParsing: true},
			{Name: "crictl", Usage: "run upstream crictl (bundled) against kubox's containerd", SkipFlagParsing: true},
		},
	}
	addExamples(app.Commands, "", commandExamples())
	return app
}

func usageError(c *ucli.Context, err error, _ bool) error {
	name := "kubox"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return fmt.Errorf("%v; see '%s --help'", err, name)
}

// oneLine folds a multi-line error (upstream aggregates) into the single
// line a user sees.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// applyOwnConfig applies the config file's keys that are this command's
// own flags, for commands that share the server's config file.
func applyOwnConfig(c *ucli.Context, configFile, cmdName string) error {
	files, err := configfile.Files(configFile, c.IsSet("config"))
	if err != nil {
		return err
	}
	return configfile.ApplyOwn(c, cmdName, files)
}

// outputFlag is -o for commands that print a table, or JSON with -o json.
func outputFlag(dest *string) ucli.Flag {
	return &ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Destination: dest, Usage: "json for machine-readable output"}
}

func checkOutput(output string) error {
	if output != "" && output != "json" {
		return fmt.Errorf("invalid --output %q: give json, or leave it out for a table", output)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
