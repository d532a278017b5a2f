// Package cgroups finds the cgroup kubox was started in and prepares the
// cgroup root below it under which the kubelet and runc create every pod
// cgroup, so that nothing kubox starts lands at a hierarchy's root.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Mount is where cgroup hierarchies are mounted.
const Mount = "/sys/fs/cgroup"

// Layout describes the host's cgroups as seen by this process.
type Layout struct {
	// MountDir is where the hierarchies are mounted (Mount on a host).
	MountDir string
	// Unified is true on a pure cgroup v2 host.
	Unified bool
	// Own maps each v1 controller (or "" for v2) to this process's cgroup.
	Own map[string]string
	// Hierarchies maps v1 mount directory names (e.g. "cpu,cpuacct" or
	// "memory") to the cgroup path of this process in it.
	Hierarchies map[string]string
}

// Detect reads /proc/self/cgroup and the cgroup mounts.
func Detect() (Layout, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return Layout{}, err
	}
	defer f.Close()
	l := Layout{MountDir: Mount, Own: map[string]string{}, Hierarchies: map[string]string{}}
	_, err = os.Stat(filepath.Join(Mount, "cgroup.controllers"))
	l.Unified = err == nil
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, p := parts[1], parts[2]
		if ctrls == "" {
			l.Own[""] = p
			continue
		}
		// Named hierarchies (name=systemd) hold no resources, but the
		// kubelet's cgroupfs driver expects its root in them as well.
		ctrls = strings.TrimPrefix(ctrls, "name=")
		for _, c := range strings.Split(ctrls, ",") {
			l.Own[c] = p
		}
		dir := ctrls
		if _, err := os.Stat(filepath.Join(Mount, dir)); err != nil {
			// Co-mounted controllers may be mounted under one name with
			// links for the others; use whichever exists.
			for _, c := range strings.Split(ctrls, ",") {
				if _, err := os.Stat(filepath.Join(Mount, c)); err == nil {
					dir = c
					break
				}
			}
		}
		l.Hierarchies[dir] = p
	}
	return l, sc.Err()
}

// DeepestOwn is the deepest of this process's cgroups across the v1
// hierarchies (on this kind of host, the memory cgroup a supervisor put us
// in), or the v2 cgroup. The kubelet's root goes below it.
func (l Layout) DeepestOwn() string {
	if l.Unified {
		return l.Own[""]
	}
	best := "/"
	keys := make([]string, 0, len(l.Hierarchies))
	for k := range l.Hierarchies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p := l.Hierarchies[k]; strings.Count(p, "/") > strings.Count(best, "/") || best == "/" && p != "/" {
			best = p
		}
	}
	return best
}

// Root returns the cgroup root for pods: name below the deepest own cgroup.
func (l Layout) Root(name string) string {
	return path.Join(l.DeepestOwn(), name)
}

// Prepare creates root in every hierarchy (v1) or in the unified tree (v2).
// It returns the directories it created, deepest last, so that they can be
// removed again in reverse by Remove.
func (l Layout) Prepare(root string) ([]string, error) {
	var created []string
	if l.Unified {
		dir := filepath.Join(l.MountDir, root)
		made, err := mkdirs(dir)
		created = append(created, made...)
		if err != nil {
			return created, fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		// Delegate the controllers the kubelet needs to the new subtree.
		parent := filepath.Dir(dir)
		for p := parent; strings.HasPrefix(p, l.MountDir) && p != l.MountDir; p = filepath.Dir(p) {
			_ = enableControllers(p)
		}
		_ = enableControllers(dir)
		return created, nil
	}
	dirs := make([]string, 0, len(l.Hierarchies))
	for h := range l.Hierarchies {
		dirs = append(dirs, h)
	}
	sort.Strings(dirs)
	for _, h := range dirs {
		dir := filepath.Join(l.MountDir, h, root)
		made, err := mkdirs(dir)
		created = append(created, made...)
		if err != nil {
			return created, fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		if strings.Contains(h, "cpuset") {
			// A new cpuset cgroup starts empty; copy the parent's CPUs and
			// memory nodes down the path or no task can join it.
			for _, d := range made {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					if v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f)); err == nil {
						_ = os.WriteFile(filepath.Join(d, f), v, 0o644)
					}
				}
			}
		}
		if strings.Contains(h, "memory") {
			// Hierarchical accounting, so a pod's limit covers its children.
			_ = os.WriteFile(filepath.Join(dir, "memory.use_hierarchy"), []byte("1"), 0o644)
		}
	}
	return created, nil
}

// mkdirs creates dir and its missing parents, returning those it created
// (outermost first).
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append([]string{d}, missing...)
		if d == filepath.Dir(d) {
			break
		}
	}
	var made []string
	for _, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return made, err
		}
		made = append(made, d)
	}
	return made, nil
}

func enableControllers(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	var want []string
	for _, c := range strings.Fields(string(data)) {
		want = append(want, "+"+c)
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(want, " ")), 0o644)
}

// Procs lists the processes in root or below it, in any hierarchy: what
// is left of a node's containers once their shims are gone.
func (l Layout) Procs(root string) []int {
	var tops []string
	if l.Unified {
		tops = []string{filepath.Join(l.MountDir, root)}
	} else {
		for h := range l.Hierarchies {
			tops = append(tops, filepath.Join(l.MountDir, h, root))
		}
	}
	seen := map[int]bool{}
	var out []int
	for _, top := range tops {
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	sort.Ints(out)
	return out
}

// Remove deletes the cgroup root and everything below it in every
// hierarchy, deepest first. Cgroups with tasks still in them stay.
func (l Layout) Remove(root string) error {
	type tree struct{ top, own string }
	var dirs []tree
	if l.Unified {
		dirs = []tree{{filepath.Join(l.MountDir, root), filepath.Join(l.MountDir, l.Own[""])}}
	} else {
		for h, own := range l.Hierarchies {
			dirs = append(dirs, tree{filepath.Join(l.MountDir, h, root), filepath.Join(l.MountDir, h, own)})
		}
		// On a hybrid host the kubelet and runc mirror pod cgroups into the
		// v2 tree as well; those go too (the subtree only: the parents
		// there were not made by Prepare).
		if _, err := os.Stat(filepath.Join(l.MountDir, "unified", "cgroup.controllers")); err == nil {
			top := filepath.Join(l.MountDir, "unified", root)
			dirs = append(dirs, tree{top, top})
		}
	}
	var errs []error
	for _, t := range dirs {
		top := t.top
		var all []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, d := range all {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		// Parents Prepare had to create in hierarchies where this process
		// sits higher up: remove them while empty, never our own cgroup.
		for d := filepath.Dir(top); len(d) > len(t.own) && strings.HasPrefix(d, t.own); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}
