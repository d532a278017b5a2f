package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kubox-io/kubox/pkg/atomicfile"
	"github.com/kubox-io/kubox/pkg/bundle"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

// crictlEnv are the environment variables through which crictl is pointed
// elsewhere; the user setting any of them turns kubox's preset off.
func crictlEnv() []string {
	return []string{"CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE"}
}

// Crictl runs upstream crictl, carried in the bundle, pointed at the
// node's containerd (args[0] is the program name). Its flags are crictl's,
// so the node is found from the environment and the config file.
//
// The preset is a crictl.yaml in the node's data dir, named by
// CRI_CONFIG_FILE: crictl's own precedence then lets a flag (--timeout, …)
// win over it, and crictl finds a config file, so it does not warn that
// /etc/crictl.yaml is missing. A user who names an endpoint or a config
// file gets crictl untouched.
func Crictl(args []string) int {
	if err := execCrictl(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "crictl: %s\n", oneLine(err))
	}
	return 1
}

// execCrictl returns only on failure.
func execCrictl(args []string) error {
	p, err := nodePaths()
	if err != nil {
		return err
	}
	given, command := crictlGlobals(args)
	preset := !given["config"] && !given["runtime-endpoint"] && !given["image-endpoint"]
	for _, name := range crictlEnv() {
		if os.Getenv(name) != "" {
			preset = false
		} else {
			os.Unsetenv(name) // set but empty would count as given
		}
	}
	if preset && crictlNeedsRuntime(args, given, command) {
		if _, err := os.Stat(p.ContainerdSocket); err != nil {
			return fmt.Errorf("no container runtime socket at %s: is the kubox node running, and is this its data dir (KUBOX_DATA_DIR, or data-dir in KUBOX_CONFIG_FILE)? Or give --runtime-endpoint", p.ContainerdSocket)
		}
	}
	b, err := bundle.Extract(p.DataDir)
	if err != nil {
		return err
	}
	if preset {
		if err := writeCrictlConfig(p); err != nil {
			return err
		}
		os.Setenv("CRI_CONFIG_FILE", p.CrictlConfig)
	}
	exe := filepath.Join(b.BinDir, "crictl")
	err = syscall.Exec(exe, append([]string{"crictl"}, args...), os.Environ())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("this kubox binary carries no crictl; build it again with make")
	}
	return fmt.Errorf("run %s: %w", exe, err)
}

// crictlConfig is the preset: the node's containerd for both services, and
// a timeout longer than crictl's 2 s, which a busy small node can exceed.
func crictlConfig(p paths.Paths) []byte {
	endpoint := "unix://" + p.ContainerdSocket
	return []byte("# kubox crictl's preset for this node (rewritten by kubox crictl): give\n" +
		"# --runtime-endpoint or --config to use another runtime.\n" +
		"runtime-endpoint: " + endpoint + "\n" +
		"image-endpoint: " + endpoint + "\n" +
		"timeout: 10\n")
}

// writeCrictlConfig writes the preset unless it is there already.
func writeCrictlConfig(p paths.Paths) error {
	want := crictlConfig(p)
	if got, err := os.ReadFile(p.CrictlConfig); err == nil && bytes.Equal(got, want) {
		return nil
	}
	err := os.MkdirAll(filepath.Dir(p.CrictlConfig), 0o755)
	if err == nil {
		err = atomicfile.Write(p.CrictlConfig, want, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w; kubox crictl needs write access to the node's data dir: run it as root", p.CrictlConfig, err)
	}
	return nil
}

// crictlFlag names one of crictl's global flags by its long name, and says
// whether it takes a value: the command is the first argument that is
// neither a flag nor one's value.
func crictlFlag(name string) (long string, takesValue bool) {
	switch name {
	case "c", "config":
		return "config", true
	case "r", "runtime-endpoint":
		return "runtime-endpoint", true
	case "i", "image-endpoint":
		return "image-endpoint", true
	case "t", "timeout":
		return "timeout", true
	case "max-retries", "tracing-sampling-rate-per-million", "tracing-endpoint", "profile-cpu", "profile-mem":
		return name, true
	case "D":
		return "debug", false
	case "h":
		return "help", false
	case "v":
		return "version", false
	}
	return name, false
}

// crictlGlobals reads crictl's global flags (those before the command) by
// their long names, and the command.
func crictlGlobals(args []string) (given map[string]bool, command string) {
	given = map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			return given, a
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		long, takesValue := crictlFlag(name)
		given[long] = true
		if takesValue && !hasValue {
			i++
		}
	}
	return given, ""
}

// crictlNeedsRuntime says whether the command talks to the runtime: help
// (a command's too), the version of crictl itself, completion and config
// do not.
func crictlNeedsRuntime(args []string, given map[string]bool, command string) bool {
	if given["help"] || given["version"] {
		return false
	}
	switch command {
	case "", "help", "h", "completion", "config":
		return false
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" {
			return false
		}
	}
	return true
}
