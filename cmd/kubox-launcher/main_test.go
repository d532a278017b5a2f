package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubox-io/kubox/pkg/sfx"
)

// TestLauncher packs /bin/bash behind the launcher: called through a link
// named kubectl, it must unpack into the data dir the command line names,
// once, and run the program with the same name and arguments.
func TestLauncher(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	launcher := filepath.Join(dir, "launcher")
	if out, err := exec.Command("go", "build", "-o", launcher, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	release := filepath.Join(dir, "kubox")
	if err := sfx.Pack(launcher, bash, release); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "kubectl")
	os.Symlink("kubox", link)
	data := filepath.Join(dir, "data-dir")

	runIt := func() string {
		t.Helper()
		out, err := exec.Command(link, "-c", `tr "\0" " " </proc/$$/cmdline`, "--data-dir", data).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	if out := runIt(); out != link+` -c tr "\0" " " </proc/$$/cmdline --data-dir `+data+" " {
		t.Errorf("the program saw the command line %q", out)
	}
	unpacked, _ := filepath.Glob(filepath.Join(data, "data", "kubox-*", "kubox"))
	if len(unpacked) != 1 {
		t.Fatalf("unpacked: %v", unpacked)
	}
	want, _ := os.ReadFile(bash)
	if got, _ := os.ReadFile(unpacked[0]); !bytes.Equal(got, want) {
		t.Fatal("the unpacked program is not the packed one")
	}
	before, _ := os.Stat(unpacked[0])
	runIt()
	if after, _ := os.Stat(unpacked[0]); !after.ModTime().Equal(before.ModTime()) {
		t.Error("the second run unpacked again")
	}

	// A damaged release is refused with one line, and leaves nothing.
	raw, _ := os.ReadFile(release)
	raw[len(raw)-200] ^= 0xff
	damaged := filepath.Join(dir, "damaged")
	os.WriteFile(damaged, raw, 0o755)
	fresh := filepath.Join(dir, "fresh")
	out, err := exec.Command(damaged, "--data-dir", fresh).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is damaged") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("damaged release: %v %q", err, out)
	}
	if left, _ := filepath.Glob(filepath.Join(fresh, "data", "kubox-*", "*")); len(left) != 0 {
		t.Errorf("a damaged release left %v", left)
	}
}
