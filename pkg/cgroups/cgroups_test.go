package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeV1 lays out v1 hierarchies under a temp dir the way this kind of host
// has them: the memory cgroup is a supervisor's, the others are the root.
func fakeV1(t *testing.T) Layout {
	t.Helper()
	dir := t.TempDir()
	own := "/process_api/abc"
	l := Layout{MountDir: dir, Own: map[string]string{}, Hierarchies: map[string]string{
		"memory": own, "cpu": "/", "cpuset": "/", "systemd": "/",
	}}
	for h, p := range l.Hierarchies {
		if err := os.MkdirAll(filepath.Join(dir, h, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "cpuset", "cpuset.cpus"), []byte("0-1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cpuset", "cpuset.mems"), []byte("0\n"), 0o644)
	return l
}

// TestNesting: the pod root goes below the deepest own cgroup, exists in
// every hierarchy after Prepare, and Remove takes away exactly what
// Prepare made, never the cgroup kubox was started in.
func TestNesting(t *testing.T) {
	l := fakeV1(t)
	root := l.Root("kubox")
	if root != "/process_api/abc/kubox" {
		t.Fatalf("root %s, want /process_api/abc/kubox", root)
	}
	created, err := l.Prepare(root)
	if err != nil {
		t.Fatal(err)
	}
	for h := range l.Hierarchies {
		if _, err := os.Stat(filepath.Join(l.MountDir, h, root)); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if len(created) == 0 {
		t.Fatalf("Prepare reported nothing created")
	}
	cpus, _ := os.ReadFile(filepath.Join(l.MountDir, "cpuset", root, "cpuset.cpus"))
	if string(cpus) != "0-1\n" {
		t.Errorf("cpuset.cpus not copied down: %q", cpus)
	}
	// Something of the kubelet's below the root goes too.
	os.MkdirAll(filepath.Join(l.MountDir, "memory", root, "kubepods", "besteffort"), 0o755)
	// On cgroupfs, control files are not real files and go with rmdir;
	// a temp dir needs them gone first.
	filepath.WalkDir(filepath.Join(l.MountDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Dir(p) != filepath.Join(l.MountDir, "cpuset") {
			os.Remove(p)
		}
		return nil
	})
	if err := l.Remove(root); err != nil {
		t.Fatal(err)
	}
	for h := range l.Hierarchies {
		if _, err := os.Stat(filepath.Join(l.MountDir, h, root)); !os.IsNotExist(err) {
			t.Errorf("%s: root still there", h)
		}
	}
	if _, err := os.Stat(filepath.Join(l.MountDir, "memory", "process_api", "abc")); err != nil {
		t.Errorf("the cgroup kubox started in was removed")
	}
	if _, err := os.Stat(filepath.Join(l.MountDir, "cpu", "process_api")); !os.IsNotExist(err) {
		t.Errorf("parents Prepare created in the cpu hierarchy were left behind")
	}
}

func TestDeepestOwnUnified(t *testing.T) {
	l := Layout{Unified: true, Own: map[string]string{"": "/user.slice/kubox.scope"}}
	if got := l.Root("kubox"); got != "/user.slice/kubox.scope/kubox" {
		t.Fatalf("root %s", got)
	}
}

// TestProcs: every process below the root is found once, whichever
// hierarchy lists it, and nothing outside the root is.
func TestProcs(t *testing.T) {
	l := fakeV1(t)
	root := l.Root("kubox")
	write := func(dir, procs string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(procs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(l.MountDir, "memory", root, "kubepods", "pod1", "c1"), "41\n42\n")
	write(filepath.Join(l.MountDir, "cpu", root, "kubepods", "pod1", "c1"), "42\n43\n")
	write(filepath.Join(l.MountDir, "memory", "process_api", "abc"), "7\n")
	got := l.Procs(root)
	if len(got) != 3 || got[0] != 41 || got[1] != 42 || got[2] != 43 {
		t.Fatalf("Procs = %v, want [41 42 43]", got)
	}
	if n := len(l.Procs("/elsewhere")); n != 0 {
		t.Fatalf("Procs of a missing root found %d processes", n)
	}
}
