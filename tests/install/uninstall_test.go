package install

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubox-io/kubox/tests/testenv"
)

// standIn puts at path a kubox that is the real one for everything but
// killall, which it only records in killallLog: these tests run no node,
// and a real killall would take down the nodes of other tests on the host
// (it removes cni0, flannel.1 and the KUBE-* chains).
func standIn(t *testing.T, path string) (killallLog string) {
	t.Helper()
	killallLog = filepath.Join(filepath.Dir(filepath.Dir(path)), "killall.log")
	script := "#!/bin/sh\nif [ \"$1\" = killall ]; then echo \"$*\" >>" + shq(killallLog) + "; exit 0; fi\nexec " +
		shq(testenv.KuboxBin(t, "test-install")) + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return killallLog
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// manifest reads the install manifest's entries.
func manifest(t *testing.T, l layout, service string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.Bin, service+"-install.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(line, "#") {
			entries = append(entries, line)
		}
	}
	return entries
}

// files lists the regular files and links below root, root-relative.
func files(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	for _, n := range tree(t, root) {
		if fi, err := os.Lstat(filepath.Join(root, n)); err == nil && !fi.IsDir() {
			names = append(names, n)
		}
	}
	return names
}

// TestUninstallRemovesWhatItMade: with no node run, an install records
// every file it wrote and the directories it made for kubox, with the
// modes a user expects; the uninstaller refuses to run without the
// manifest, then removes exactly what it names, and what the service wrote
// in those directories.
func TestUninstallRemovesWhatItMade(t *testing.T) {
	requireRoot(t)
	l := newLayout(t)
	killallLog := standIn(t, filepath.Join(l.Bin, "kubox"))
	sentinel := filepath.Join(l.Bin, "sentinel")
	if err := os.WriteFile(sentinel, []byte("not kubox's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := l.env(hostTools(t, "kubectl", "crictl", "ctr"), "systemd", "INSTALL_KUBOX_SKIP_DOWNLOAD=true",
		"INSTALL_KUBOX_EXEC=--data-dir "+l.Data+" --run-dir "+l.Run+"/", "KUBOX_NODE_NAME="+nodeName)
	mustSucceed(t, "install", pipeInstall(t, env, nil))

	unit, envPath := filepath.Join(l.Systemd, "kubox.service"), filepath.Join(l.Systemd, "kubox.service.env")
	completion := filepath.Join(l.Completion, "kubox")
	for path, mode := range map[string]os.FileMode{
		filepath.Join(l.Bin, "kubox-uninstall.sh"): 0o755, filepath.Join(l.Bin, "kubox-killall.sh"): 0o755,
		unit: 0o644, envPath: 0o600, filepath.Join(l.Config, "config.yaml"): 0o600,
		completion: 0o644, filepath.Join(l.Bin, "kubox-install.manifest"): 0o644,
	} {
		checkMode(t, path, mode)
	}
	if text, _ := os.ReadFile(completion); !strings.Contains(string(text), "complete ") || !strings.Contains(string(text), "--generate-bash-completion") {
		t.Errorf("%s is not kubox's bash completion:\n%s", completion, text)
	}
	got := manifest(t, l, "kubox")
	for _, want := range []string{
		"dir " + l.Data, "dir " + l.Run, "dir " + l.Config,
		"file " + filepath.Join(l.Bin, "kubox"), "file " + unit, "file " + envPath, "file " + completion,
		"file " + filepath.Join(l.Config, "kubox.yaml"), "link " + filepath.Join(l.Bin, "kubectl"),
	} {
		if !slices.Contains(got, want) {
			t.Errorf("the manifest lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if names := tree(t, l.Tmp); len(names) > 0 {
		t.Errorf("the installer left temp files: %v", names)
	}
	// A second run (an upgrade) keeps what the first recorded.
	mustSucceed(t, "upgrade", pipeInstall(t, env, nil))
	if again := manifest(t, l, "kubox"); !sameList(again, got) {
		t.Errorf("the upgrade changed the manifest:\nbefore %v\nafter  %v", got, again)
	}

	// What the service would write while it runs.
	for _, p := range []string{filepath.Join(l.Data, "server", "token"), filepath.Join(l.Run, "containerd", "sock"), filepath.Join(l.Config, "kubox.yaml")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	uninstall := filepath.Join(l.Bin, "kubox-uninstall.sh")
	shellcheck(t, uninstall)
	hidden := filepath.Join(l.Root, "manifest.away")
	if err := os.Rename(filepath.Join(l.Bin, "kubox-install.manifest"), hidden); err != nil {
		t.Fatal(err)
	}
	before := tree(t, l.Root)
	mustRefuse(t, runSh(t, []string{"PATH=" + hostTools(t)}, nil, nil, uninstall), "kubox-install.manifest is missing", true)
	if after := tree(t, l.Root); !sameList(before, after) {
		t.Errorf("an uninstall without its manifest changed %s:\nbefore %v\nafter  %v", l.Root, before, after)
	}
	if err := os.Rename(hidden, filepath.Join(l.Bin, "kubox-install.manifest")); err != nil {
		t.Fatal(err)
	}

	r := runSh(t, []string{"PATH=" + hostTools(t)}, nil, nil, uninstall)
	mustSucceed(t, "uninstall", r)
	if left := files(t, l.Root); !sameList(left, []string{"bin/sentinel", "killall.log"}) {
		t.Errorf("left after the uninstall: %v", left)
	}
	for _, d := range []string{l.Data, l.Run, l.Config} {
		if _, err := os.Lstat(d); err == nil {
			t.Errorf("the uninstall kept %s, which the install made", d)
		}
	}
	if log, _ := os.ReadFile(killallLog); !strings.Contains(string(log), "killall --data-dir "+l.Data+" --run-dir "+l.Run) {
		t.Errorf("the uninstall did not run kubox killall for its dirs: %q", log)
	}
}

// TestUninstallKeepsForeignDirs: a configuration or data dir that held
// files of its own before the install (INSTALL_KUBOX_CONFIG_DIR=/etc, say)
// is never removed: its files survive, only what the installer wrote in it
// goes, and the uninstaller says in one line per directory that it kept it.
func TestUninstallKeepsForeignDirs(t *testing.T) {
	requireRoot(t)
	l := newLayout(t)
	standIn(t, filepath.Join(l.Bin, "kubox"))
	var markers []string
	for _, d := range []string{l.Config, l.Data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		m := filepath.Join(d, "marker")
		if err := os.WriteFile(m, []byte("not kubox's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		markers = append(markers, m)
	}
	env := l.env(hostTools(t, "kubectl", "crictl", "ctr"), "openrc", "INSTALL_KUBOX_SKIP_DOWNLOAD=true",
		"INSTALL_KUBOX_EXEC=server --data-dir "+l.Data, "KUBOX_NODE_NAME="+nodeName)
	mustSucceed(t, "install", pipeInstall(t, env, nil))
	got := manifest(t, l, "kubox")
	for _, d := range []string{l.Config, l.Data} {
		if slices.Contains(got, "dir "+d) {
			t.Errorf("the manifest claims %s, which held a file of its own:\n%s", d, strings.Join(got, "\n"))
		}
	}
	// What the service would write: its state, and the admin kubeconfig.
	state := filepath.Join(l.Data, "server", "token")
	for _, p := range []string{state, filepath.Join(l.Config, "kubox.yaml")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	r := runSh(t, []string{"PATH=" + hostTools(t)}, nil, nil, filepath.Join(l.Bin, "kubox-uninstall.sh"))
	t.Logf("uninstall (exit %d):\n%s", r.code, r.out)
	if r.code != 0 {
		t.Fatalf("uninstall failed")
	}
	var kept []string
	for _, line := range r.lines() {
		switch {
		case strings.HasPrefix(line, "[WARN] kept "):
			kept = append(kept, strings.TrimSuffix(strings.Fields(line)[2], ":"))
		case !strings.HasPrefix(line, "[INFO] "):
			t.Errorf("unexpected line %q", line)
		}
	}
	if !sameList(kept, []string{l.Data, l.Config}) {
		t.Errorf("the uninstall said it kept %v, want one line each for %s and %s", kept, l.Data, l.Config)
	}
	for _, m := range append(markers, state) {
		if _, err := os.Stat(m); err != nil {
			t.Errorf("the uninstall removed %s, in a directory that was not kubox's", m)
		}
	}
	for _, gone := range []string{"kubox.env", "config.yaml", "kubox.yaml"} {
		if _, err := os.Lstat(filepath.Join(l.Config, gone)); err == nil {
			t.Errorf("the uninstall kept %s, which the installer wrote", gone)
		}
	}
	if left := files(t, l.Bin); len(left) > 0 {
		t.Errorf("left in the bin dir: %v", left)
	}
}
