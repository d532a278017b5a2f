package configfile_test

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/configfile"
)

// result is what the "server" action saw after Apply.
type result struct {
	DataDir  string // via StringFlag.Destination
	Port     int    // via IntFlag.Destination
	SANs     []string
	Debug    bool
	Timeout  time.Duration
	CtxDir   string // ctx.String, to show context and destination agree
	CtxSANs  []string
	ranFiles []string
}

// run executes "kubox server args..." with --config defaulting to defaultConfig.
func run(t *testing.T, defaultConfig string, args ...string) (result, error) {
	t.Helper()
	var (
		dataDir string
		port    int
		sans    cli.StringSlice // bound via Destination, as kubox's option structs do
		res     result
	)
	app := &cli.App{
		Name:      "kubox",
		Writer:    io.Discard,
		ErrWriter: io.Discard,
		Commands: []*cli.Command{{
			Name: "server",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfig},
				&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Value: "/var/lib/kubox", Destination: &dataDir},
				&cli.IntFlag{Name: "https-listen-port", Value: 6443, Destination: &port},
				&cli.BoolFlag{Name: "debug"},
				&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second},
				&cli.StringSliceFlag{Name: "tls-san", Aliases: []string{"san"}, Destination: &sans},
			},
			Action: func(ctx *cli.Context) error {
				files, err := configfile.Files(ctx.String("config"), ctx.IsSet("config"))
				if err != nil {
					return err
				}
				if err := configfile.Apply(ctx, "kubox server", files); err != nil {
					return err
				}
				res = result{
					DataDir:  dataDir,
					Port:     port,
					SANs:     sans.Value(),
					Debug:    ctx.Bool("debug"),
					Timeout:  ctx.Duration("drain-timeout"),
					CtxDir:   ctx.String("data-dir"),
					CtxSANs:  ctx.StringSlice("tls-san"),
					ranFiles: files,
				}
				return nil
			},
		}},
	}
	err := app.Run(append([]string{"kubox", "server"}, args...))
	return res, err
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRun(t *testing.T, cfg string, args ...string) result {
	t.Helper()
	res, err := run(t, cfg, args...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestFileValuesReachDestinations(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	write(t, cfg, `
data-dir: /srv/kubox
https-listen-port: 6444
debug: true
drain-timeout: 2m
tls-san: [a.example, 10.0.0.1]
`)
	got := mustRun(t, cfg)
	want := result{
		DataDir: "/srv/kubox", Port: 6444, SANs: []string{"a.example", "10.0.0.1"},
		Debug: true, Timeout: 2 * time.Minute,
		CtxDir: "/srv/kubox", CtxSANs: []string{"a.example", "10.0.0.1"},
		ranFiles: []string{cfg},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestScalarForms(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	// Alias keys, a number for a string flag (kept as written), a float with no
	// fraction for an int, and one scalar for a list.
	write(t, cfg, "d: 1.20\nhttps-listen-port: 7000.0\nsan: 10.0.0.1\n")
	got := mustRun(t, cfg)
	if got.DataDir != "1.20" || got.Port != 7000 || !reflect.DeepEqual(got.SANs, []string{"10.0.0.1"}) {
		t.Errorf("got %+v", got)
	}
}

func TestCommandLineWins(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	write(t, cfg, "data-dir: /from/file\nhttps-listen-port: 7000\ntls-san: [file.example]\n")
	got := mustRun(t, cfg, "--data-dir", "/from/cli", "--san", "cli.example")
	if got.DataDir != "/from/cli" || got.CtxDir != "/from/cli" {
		t.Errorf("data-dir = %q (ctx %q), want /from/cli", got.DataDir, got.CtxDir)
	}
	if !reflect.DeepEqual(got.SANs, []string{"cli.example"}) {
		t.Errorf("tls-san = %q, want only the command line's value", got.SANs)
	}
	if got.Port != 7000 {
		t.Errorf("https-listen-port = %d, want 7000 from the file", got.Port)
	}
}

func TestDropInsOverrideInNameOrder(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	write(t, cfg, "data-dir: /a\nhttps-listen-port: 1\ntls-san: [a, b]\ndrain-timeout: 1m\n")
	// Written out of order on purpose; 10 must be applied before 20.
	write(t, cfg+".d/20-last.yaml", "data-dir: /c\n")
	write(t, cfg+".d/10-first.yaml", "data-dir: /b\nhttps-listen-port: 2\ntls-san: [z]\ndrain-timeout:\n")
	write(t, cfg+".d/ignored.yml", "debug: true\n")
	write(t, cfg+".d/empty.yaml", "")

	got := mustRun(t, cfg)
	wantFiles := []string{cfg, cfg + ".d/10-first.yaml", cfg + ".d/20-last.yaml", cfg + ".d/empty.yaml"}
	if !reflect.DeepEqual(got.ranFiles, wantFiles) {
		t.Errorf("files = %q, want %q", got.ranFiles, wantFiles)
	}
	if got.DataDir != "/c" || got.Port != 2 || got.Debug {
		t.Errorf("got %+v", got)
	}
	if !reflect.DeepEqual(got.SANs, []string{"z"}) {
		t.Errorf("tls-san = %q, want [z]: a later list replaces, not appends", got.SANs)
	}
	if got.Timeout != 30*time.Second {
		t.Errorf("drain-timeout = %v, want the 30s default after a null in a later file", got.Timeout)
	}
}

func TestDropInsWithoutMainFile(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	write(t, cfg+".d/10.yaml", "https-listen-port: 9\n")
	if got := mustRun(t, cfg); got.Port != 9 {
		t.Errorf("port = %d, want 9", got.Port)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                string // full message after "config file <path>: "
	}{
		{
			name: "unknown key", file: "config.yaml", content: "data-dri: /x\n",
			want: `unknown key "data-dri" (not a flag of "kubox server"; did you mean "data-dir"?)`,
		},
		{
			name: "unknown key without suggestion", file: "config.yaml", content: "kube-apiserver-arg: [x]\n",
			want: `unknown key "kube-apiserver-arg" (not a flag of "kubox server")`,
		},
		{
			name: "help is not a setting", file: "config.yaml", content: "help: true\n",
			want: `unknown key "help" (not a flag of "kubox server")`,
		},
		{
			name: "int from string", file: "config.yaml.d/10-net.yaml", content: "https-listen-port: abc\n",
			want: `key "https-listen-port": expected an integer, got string "abc"`,
		},
		{
			name: "int from fraction", file: "config.yaml", content: "https-listen-port: 1.5\n",
			want: `key "https-listen-port": expected an integer, got number 1.5`,
		},
		{
			name: "bool from string", file: "config.yaml", content: "debug: \"yes\"\n",
			want: `key "debug": expected a boolean (true or false), got string "yes"`,
		},
		{
			name: "slice from mapping", file: "config.yaml", content: "tls-san: {a: b}\n",
			want: `key "tls-san": expected a list of strings or a single string, got a mapping`,
		},
		{
			name: "slice item mapping", file: "config.yaml", content: "san: [a, {b: c}]\n",
			want: `key "san": expected a list of strings or a single string, got a list whose item 2 is a mapping`,
		},
		{
			name: "duration", file: "config.yaml", content: "drain-timeout: 5 minutes\n",
			want: `key "drain-timeout": expected a duration such as "90s" or "5m", got string "5 minutes"`,
		},
		{
			name: "alias and name in one file", file: "config.yaml", content: "tls-san: [a]\nsan: [b]\n",
			want: `keys "tls-san" and "san" set the same flag; keep one`,
		},
		{
			name: "top level list", file: "config.yaml", content: "- data-dir\n",
			want: `top level must be a mapping of flag names to values, got a list`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.yaml")
			path := filepath.Join(dir, tc.file)
			write(t, path, tc.content)
			_, err := run(t, cfg)
			want := "config file " + path + ": " + tc.want
			if err == nil || err.Error() != want {
				t.Errorf("error = %v\nwant    %s", err, want)
			}
		})
	}
}

func TestInvalidYAML(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	write(t, cfg, "data-dir: /x\ntls-san: [a\n")
	_, err := run(t, cfg)
	prefix := "config file " + cfg + ": not valid YAML: line "
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error = %v, want one line starting %q", err, prefix)
	}
}

func TestConfigFlagMissing(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")

	_, err := run(t, filepath.Join(dir, "config.yaml"), "--config", missing)
	want := "config file " + missing + ": no such file; check --config"
	if err == nil || err.Error() != want {
		t.Errorf("explicit --config: error = %v, want %q", err, want)
	}

	// The default path may be absent: defaults apply.
	got, err := run(t, missing)
	if err != nil {
		t.Fatalf("default path absent: %v", err)
	}
	if len(got.ranFiles) != 0 || got.DataDir != "/var/lib/kubox" || got.Port != 6443 || got.SANs != nil {
		t.Errorf("default path absent: got %+v", got)
	}
}

// TestApplyOwnSkipsOtherCommandsKeys: a command sharing another's config
// file takes its own keys from it and skips the rest.
func TestApplyOwnSkipsOtherCommandsKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	write(t, cfg, "data-dir: /srv/kubox\ncluster-cidr: 10.50.0.0/16\n")
	var dataDir string
	app := &cli.App{Name: "kubox", Writer: io.Discard, ErrWriter: io.Discard, Commands: []*cli.Command{{
		Name:  "killall",
		Flags: []cli.Flag{&cli.StringFlag{Name: "data-dir", Value: "/var/lib/kubox", Destination: &dataDir}},
		Action: func(ctx *cli.Context) error {
			if err := configfile.Apply(ctx, "kubox killall", []string{cfg}); err == nil || !strings.Contains(err.Error(), `unknown key "cluster-cidr"`) {
				t.Errorf("Apply: err = %v, want the unknown key refused", err)
			}
			return configfile.ApplyOwn(ctx, "kubox killall", []string{cfg})
		},
	}}}
	if err := app.Run([]string{"kubox", "killall"}); err != nil {
		t.Fatal(err)
	}
	if dataDir != "/srv/kubox" {
		t.Errorf("data-dir = %q, want the file's", dataDir)
	}
}
