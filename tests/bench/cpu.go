package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on every Linux
// architecture kubox is built for).
const clockTicks = 100

// cpuSnap is the CPU time used so far, in seconds: by each process label
// of a node's cgroup, by this process (the bench's clients), and by the
// whole machine, busy and in all.
type cpuSnap struct {
	byLabel      map[string]float64
	self         float64
	machineBusy  float64
	machineTotal float64
}

func snapCPU(cg *cgroup) cpuSnap {
	s := cpuSnap{byLabel: map[string]float64{}}
	for _, pid := range cg.pids() {
		if t, err := procCPU(pid); err == nil {
			s.byLabel[procLabel(pid)] += t
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			if i > 8 { // guest times are already counted in user
				break
			}
			v, _ := strconv.ParseFloat(f[i], 64)
			s.machineTotal += v / clockTicks
			if i != 4 && i != 5 { // idle, iowait
				s.machineBusy += v / clockTicks
			}
		}
	}
	return s
}

// procCPU is a process's user+system time in seconds (its threads', and
// its children's it has waited for are not counted).
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command, which may hold spaces, from "state" on:
	// utime and stime are the 12th and 13th.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / clockTicks, nil
}

// cpuShare describes where the CPU went between two snapshots taken wall
// seconds apart, in cores.
func cpuShare(a, b cpuSnap, wall float64) string {
	var sb strings.Builder
	busy := (b.machineBusy - a.machineBusy) / wall
	total := (b.machineTotal - a.machineTotal) / wall
	fmt.Fprintf(&sb, "machine: %.2f of %.0f cores busy (%.0f%%)\n", busy, total, 100*busy/total)
	fmt.Fprintf(&sb, "bench clients (this process): %.2f cores\n", (b.self-a.self)/wall)
	var labels []string
	for l := range b.byLabel {
		labels = append(labels, l)
	}
	sort.Slice(labels, func(i, j int) bool {
		return b.byLabel[labels[i]]-a.byLabel[labels[i]] > b.byLabel[labels[j]]-a.byLabel[labels[j]]
	})
	for _, l := range labels {
		if d := (b.byLabel[l] - a.byLabel[l]) / wall; d >= 0.005 {
			fmt.Fprintf(&sb, "%s: %.2f cores\n", l, d)
		}
	}
	return sb.String()
}
