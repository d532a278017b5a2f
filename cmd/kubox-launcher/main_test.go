package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/kubox-io/kubox/pkg/sfx"
)

// The end-to-end tests pack a small program that reports how it was run
// behind the launcher, built once for all of them.
var (
	buildOnce sync.Once
	buildDir  string // world-readable: one case runs the release as nobody
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// programSource prints its command line and the file it runs from.
const programSource = `package main

import (
	"encoding/json"
	"os"
)

func main() {
	exe, _ := os.Readlink("/proc/self/exe")
	json.NewEncoder(os.Stdout).Encode(map[string]any{"exe": exe, "args": os.Args})
}
`

// release returns the packed file (launcher and program) and the program.
func release(t *testing.T) (packed, program string) {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "kubox-launcher-test-"); buildErr != nil {
			return
		}
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		src := filepath.Join(buildDir, "src")
		os.Mkdir(src, 0o755)
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module program\n\ngo 1.22\n"), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte(programSource), 0o644)
		for _, b := range []struct{ dir, out string }{{".", "launcher"}, {src, "program"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, b.out), ".")
			cmd.Dir = b.dir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.out, err, out)
				return
			}
		}
		buildErr = sfx.Pack(filepath.Join(buildDir, "launcher"), filepath.Join(buildDir, "program"), filepath.Join(buildDir, "kubox"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "kubox"), filepath.Join(buildDir, "program")
}

// report is what the program printed.
type report struct {
	Exe  string
	Args []string
}

// launch runs packed with argv (argv[0] is the name it is called by) and
// env, and returns the program's report, stderr and error.
func launch(t *testing.T, packed string, argv []string, env []string, cred *syscall.Credential) (report, string, error) {
	t.Helper()
	cmd := &exec.Cmd{Path: packed, Args: argv, Env: append([]string{"PATH=" + os.Getenv("PATH")}, env...)}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r report
	if err == nil {
		if jerr := json.Unmarshal(out, &r); jerr != nil {
			t.Fatalf("%q printed %q, not the program's report (stderr %q)", argv, out, stderr.String())
		}
	}
	return r, stderr.String(), err
}

// unpacked is the one kubox unpacked under dataDir.
func unpacked(t *testing.T, dataDir string) string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dataDir, "data", "kubox-*", "kubox"))
	if len(found) != 1 {
		t.Fatalf("unpacked under %s: %v, want one", dataDir, found)
	}
	return found[0]
}

func sameContent(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(x) == sha256.Sum256(y)
}

// TestPassThroughArgs: a -d among the arguments of kubectl or ctr, called
// by name or as a subcommand, does not choose where kubox is unpacked and
// run from; KUBOX_DATA_DIR does, and the program gets the command line as
// given.
func TestPassThroughArgs(t *testing.T) {
	packed, program := release(t)
	link := filepath.Join(t.TempDir(), "kubectl")
	os.Symlink(packed, link)
	for _, c := range []struct {
		name string
		argv []string // X stands for the dir -d names
	}{
		{"kubox kubectl", []string{packed, "kubectl", "-d", "X", "get", "ns"}},
		{"link kubectl", []string{link, "-d", "X", "get", "ns"}},
		{"argv0 kubectl", []string{"kubectl", "get", "ns", "--data-dir=X"}},
		{"kubox ctr", []string{packed, "ctr", "-d", "X", "images", "ls"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			d, x := filepath.Join(tmp, "d"), filepath.Join(tmp, "x")
			argv := append([]string(nil), c.argv...)
			for i, a := range argv {
				argv[i] = strings.Replace(a, "X", x, 1)
			}
			r, stderr, err := launch(t, packed, argv, []string{"KUBOX_DATA_DIR=" + d, "HOME=" + filepath.Join(tmp, "home")}, nil)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			if _, err := os.Stat(x); !os.IsNotExist(err) {
				t.Errorf("the -d among the tool's arguments made %s", x)
			}
			if !strings.HasPrefix(r.Exe, filepath.Join(d, "data")+"/") {
				t.Errorf("the program ran from %s, not from under KUBOX_DATA_DIR", r.Exe)
			}
			if !reflect.DeepEqual(r.Args, argv) {
				t.Errorf("the program saw %q, want %q", r.Args, argv)
			}
			if !sameContent(t, unpacked(t, d), program) {
				t.Error("the unpacked program is not the packed one")
			}
		})
	}
}

// TestDataDirFlag: kubox server's own -d picks the unpack dir, over
// KUBOX_DATA_DIR; the dirs and the program come out 0755 under a umask
// that would let the group write; a second run does not unpack again.
func TestDataDirFlag(t *testing.T) {
	packed, _ := release(t)
	tmp := t.TempDir()
	d, y := filepath.Join(tmp, "d"), filepath.Join(tmp, "y")
	argv := []string{"kubox", "server", "-d", y, "--version"}
	env := []string{"KUBOX_DATA_DIR=" + d, "HOME=" + tmp}
	old := syscall.Umask(0o002) // the launcher inherits it
	r, stderr, err := launch(t, packed, argv, env, nil)
	syscall.Umask(old)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	path := unpacked(t, y)
	if r.Exe != path {
		t.Errorf("the program ran from %s, want %s", r.Exe, path)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("KUBOX_DATA_DIR was used over -d: %v", err)
	}
	for _, p := range []string{filepath.Join(y, "data"), filepath.Dir(path), path} {
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", p, st.Mode().Perm())
		}
	}
	before, _ := os.Stat(path)
	if _, stderr, err := launch(t, packed, argv, env, nil); err != nil || stderr != "" {
		t.Fatalf("second run: %v %q", err, stderr)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("the second run unpacked again")
	}
}

const fake = "#!/bin/sh\necho tampered\n"

// TestTampered: an unpacked kubox changed since is unpacked again, with
// one line saying so, and the real program runs.
func TestTampered(t *testing.T) {
	packed, program := release(t)
	d := t.TempDir()
	argv := []string{"kubox", "server", "--version"}
	env := []string{"KUBOX_DATA_DIR=" + d, "HOME=" + d}
	if _, stderr, err := launch(t, packed, argv, env, nil); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	path := unpacked(t, d)
	if err := os.WriteFile(path, []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	r, stderr, err := launch(t, packed, argv, env, nil)
	if err != nil {
		t.Fatalf("after tampering: %v: %s", err, stderr)
	}
	if r.Exe != path || !reflect.DeepEqual(r.Args, argv) {
		t.Errorf("after tampering the program reported %+v", r)
	}
	if want := "kubox: " + path + " does not match its hash: unpacking it again\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if !sameContent(t, path, program) {
		t.Error("the tampered file was not restored")
	}
}

// TestTamperedReadOnly: when a changed kubox cannot be unpacked again, the
// launcher fails with a line naming the dir and what to do, and runs
// nothing. Root may write anywhere, so as root the launcher runs as nobody
// (uid 65534) on a data dir of nobody's.
func TestTamperedReadOnly(t *testing.T) {
	packed, _ := release(t)
	base, err := os.MkdirTemp("", "kubox-launcher-ro-") // t.TempDir's parent is closed to nobody
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	d := filepath.Join(base, "d")
	os.Mkdir(d, 0o755)
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	argv := []string{"kubox", "agent", "--version"}
	env := []string{"KUBOX_DATA_DIR=" + d, "HOME=" + d}
	if _, stderr, err := launch(t, packed, argv, env, cred); err != nil {
		if cred != nil && strings.Contains(err.Error(), "operation not permitted") {
			t.Skipf("cannot run as nobody: %v", err)
		}
		t.Fatalf("%v: %s", err, stderr)
	}
	path := unpacked(t, d)
	os.WriteFile(path, []byte(fake), 0o755)
	os.Chmod(filepath.Dir(path), 0o555)
	t.Cleanup(func() { os.Chmod(filepath.Dir(path), 0o755) })

	_, stderr, err := launch(t, packed, argv, env, cred)
	if err == nil {
		t.Fatal("the launcher succeeded on a changed kubox it could not replace")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	want := "kubox: cannot unpack into " + filepath.Dir(path) + ": permission denied; "
	if len(lines) != 2 || !strings.Contains(lines[0], "does not match its hash") || !strings.HasPrefix(lines[1], want) ||
		!strings.Contains(lines[1], "--data-dir") {
		t.Errorf("stderr %q, want the mismatch, then %q…", stderr, want)
	}
	if strings.Contains(stderr, "tampered") {
		t.Error("the changed kubox ran")
	}
}

// TestDamagedRelease: a release whose payload does not decode to its hash
// is refused with one line, and leaves no program behind.
func TestDamagedRelease(t *testing.T) {
	packed, _ := release(t)
	dir := t.TempDir()
	raw, _ := os.ReadFile(packed)
	raw[len(raw)-200] ^= 0xff
	damaged := filepath.Join(dir, "damaged")
	os.WriteFile(damaged, raw, 0o755)
	d := filepath.Join(dir, "d")
	_, stderr, err := launch(t, damaged, []string{"kubox", "server"}, []string{"KUBOX_DATA_DIR=" + d, "HOME=" + d}, nil)
	if err == nil || !strings.Contains(stderr, "is damaged") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("damaged release: %v %q", err, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(d, "data", "kubox-*", "*")); len(left) != 0 {
		t.Errorf("a damaged release left %v", left)
	}
}
