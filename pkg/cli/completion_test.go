package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// asKubox makes the test binary act as kubox when the completion scripts
// call it back.
const asKubox = "KUBOX_CLI_TEST_AS_KUBOX"

func TestMain(m *testing.M) {
	if os.Getenv(asKubox) == "1" {
		os.Exit(Main(os.Args))
	}
	os.Exit(m.Run())
}

// kuboxOnPath is a PATH whose kubox is this test binary acting as kubox,
// and the script `kubox completion <shell>` prints.
func kuboxOnPath(t *testing.T, shell string) (path, script string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "kubox")); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"kubox", "completion", shell}, &stdout, &stderr); code != 0 {
		t.Fatalf("kubox completion %s: exit %d: %s", shell, code, stderr.String())
	}
	script = filepath.Join(dir, "completion."+shell)
	if err := os.WriteFile(script, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir + ":/usr/local/bin:/usr/bin:/bin", script
}

// completionCases are command lines as typed before TAB, and what TAB offers.
var completionCases = []struct{ typed, want string }{
	{"kubox ser", "server"},
	{"kubox server --data-d", "--data-dir"},
	{"kubox snapshot sa", "save"},
	{"kubox certificate rotate-", "rotate-ca"},
	{"kubox agent --tok", "--token --token-file"},
	{"kubox check-config --req", "--require"},
	{"kubox completion ", "bash fish zsh"},
}

// TestBashCompletion sources `kubox completion bash` in a real bash and
// completes as bash does on TAB: COMP_WORDS and COMP_CWORD set, the
// function registered for kubox called, COMPREPLY read.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	path, script := kuboxOnPath(t, "bash")
	for _, c := range completionCases {
		t.Run(c.typed, func(t *testing.T) {
			words := strings.Split(c.typed, " ")
			cmd := exec.Command(bash, append([]string{"--norc", "--noprofile", "-c", `
source "$1" || exit 1
fn=$(complete -p kubox | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ -n "$fn" ] || { echo "no completion function for kubox" >&2; exit 1; }
shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"$fn"
printf '%s\n' "${COMPREPLY[@]}" | sort`, "bash", script}, words...)...)
			cmd.Env = []string{"PATH=" + path, asKubox + "=1", "HOME=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if got := strings.Join(strings.Fields(string(out)), " "); got != c.want {
				t.Errorf("%q<TAB> offers %q, want %q", c.typed, got, c.want)
			}
		})
	}
	if _, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command("shellcheck", "-s", "bash", script).CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
}

// TestZshCompletion runs the zsh script's function with compadd and compdef
// stood in for by functions that print what they are given.
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("no zsh on this host")
	}
	path, script := kuboxOnPath(t, "zsh")
	for _, c := range completionCases {
		t.Run(c.typed, func(t *testing.T) {
			cmd := exec.Command(zsh, append([]string{"-f", "-c", `
compdef() { print -r -- "compdef $*" >&2 }
compadd() { [[ $1 == -a ]] && print -rl -- "${(@P)2}" }
_files() { print -r -- "(files)" }
source "$1" || exit 1
shift
words=("$@"); CURRENT=$#
_kubox | sort`, "zsh", script}, strings.Split(c.typed, " ")...)...)
			cmd.Env = []string{"PATH=" + path, asKubox + "=1", "HOME=" + t.TempDir()}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("zsh: %v\n%s%s", err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), "compdef _kubox kubox") {
				t.Errorf("sourcing the script did not register _kubox for kubox: %s", stderr.String())
			}
			// zsh filters by the typed prefix itself: kubox's candidates
			// must include what bash offers.
			got := strings.Fields(stdout.String())
			for _, w := range strings.Fields(c.want) {
				if !slices.Contains(got, w) {
					t.Errorf("%q<TAB> offers %q, want %s among them", c.typed, got, w)
				}
			}
		})
	}
}

// TestFishCompletion: the fish script names kubox's commands and their flags.
func TestFishCompletion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"kubox", "completion", "fish"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"complete -c kubox", "-a 'server'", "-l data-dir", "-a 'completion'"} {
		if !strings.Contains(out, want) {
			t.Errorf("the fish script lacks %q:\n%.2000s", want, out)
		}
	}
	if fish, err := exec.LookPath("fish"); err == nil {
		cmd := exec.Command(fish, "--no-execute")
		cmd.Stdin = &stdout
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("fish --no-execute: %v\n%s", err, out)
		}
	}
}

// TestCompletionRefusal: an unknown shell is refused in one line.
func TestCompletionRefusal(t *testing.T) {
	for args, want := range map[string]string{
		"completion tcsh": `unknown shell "tcsh": give bash, zsh or fish`,
		"completion":      "give one shell: kubox completion bash, zsh or fish",
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"kubox"}, strings.Fields(args)...), &stdout, &stderr)
		if code == 0 || strings.TrimSpace(stderr.String()) != "kubox: "+want {
			t.Errorf("kubox %s: exit %d, stderr %q; want %q", args, code, stderr.String(), want)
		}
	}
}

// TestExamples: every command a user runs shows examples in its --help,
// and each example names commands and flags that exist.
func TestExamples(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	var walk func(cmds []*ucli.Command, parent string)
	walk = func(cmds []*ucli.Command, parent string) {
		for _, c := range cmds {
			path := strings.TrimSpace(parent + " " + c.Name)
			if c.Hidden || c.Name == "help" || c.Name == "containerd" {
				continue
			}
			if !strings.Contains(c.Description, "Examples:\n") {
				t.Errorf("kubox %s --help shows no example", path)
			}
			walk(c.Subcommands, path)
		}
	}
	walk(app.Commands, "")
	for path, examples := range commandExamples() {
		for _, e := range examples {
			if err := checkExample(app, e.line); err != nil {
				t.Errorf("example of kubox %s, %q: %v", path, e.line, err)
			}
		}
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"kubox", "snapshot", "save", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("kubox snapshot save --help: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "kubox snapshot save --name before-upgrade") {
		t.Errorf("kubox snapshot save --help shows no example:\n%s", stdout.String())
	}
}

// checkExample follows an example's words down the command tree and checks
// each flag it gives against the command's flags.
func checkExample(app *ucli.App, line string) error {
	_, rest, ok := strings.Cut(line, "kubox ")
	if !ok {
		return fmt.Errorf("does not run kubox")
	}
	var words []string
	for _, w := range strings.Fields(rest) {
		if w == ">" || w == "|" || w == ";" {
			break
		}
		words = append(words, strings.TrimSuffix(w, ")"))
	}
	cmds, flags := app.Commands, app.Flags
	var cmd *ucli.Command
	for len(words) > 0 {
		next := findCommand(cmds, words[0])
		if next == nil {
			break
		}
		cmd, cmds, flags, words = next, next.Subcommands, next.Flags, words[1:]
	}
	if cmd == nil {
		return fmt.Errorf("names no kubox command")
	}
	if cmd.SkipFlagParsing {
		return nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") {
			if cmd.ArgsUsage == "" {
				return fmt.Errorf("kubox %s takes no argument %q", cmd.Name, w)
			}
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		f := findFlag(flags, name)
		if f == nil {
			return fmt.Errorf("kubox %s has no flag %s", cmd.Name, w)
		}
		if _, isBool := f.(*ucli.BoolFlag); !isBool && !hasValue {
			i++ // the flag's value
		}
	}
	return nil
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func findFlag(flags []ucli.Flag, name string) ucli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
