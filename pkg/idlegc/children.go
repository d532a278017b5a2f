package idlegc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// childSignal asks a child that runs the same executable (containerd's
// process) to release its mappings of it and evict what no process maps
// (see Run). A Go process that did not ask for SIGUSR2 ignores it, so a
// child that is not listening comes to no harm.
const childSignal = syscall.SIGUSR2

// signalChildren sends childSignal to this process's children that run
// the same executable file, and returns how many it signalled.
//
// A folio of the page cache that one process maps cannot be evicted, and
// a process that touches a cached large folio maps it whole: the parent
// and its child must both have released their mappings before the
// eviction, or each keeps the other's large folios.
func signalChildren() (int, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return 0, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	me, n := os.Getpid(), 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil || parentPID(stat) != me {
			continue // gone meanwhile, or not ours
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/exe", &st) != nil || st.Dev != self.Dev || st.Ino != self.Ino {
			continue
		}
		if err := unix.Kill(pid, childSignal); err == nil {
			n++
		}
	}
	return n, nil
}

// parentPID reads the parent's PID from /proc/<pid>/stat text, whose
// second field (the command, in parentheses) may itself hold spaces and
// parentheses; -1 when the text does not parse.
func parentPID(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return -1
	}
	return ppid
}
