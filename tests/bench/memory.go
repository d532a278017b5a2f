package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// memSample is the memory of every process of a node at one moment.
type memSample struct {
	RSSMB        float64            `json:"rss_mb"`
	PSSMB        float64            `json:"pss_mb"`
	CgroupMB     float64            `json:"cgroup_usage_mb"`
	WorkingSetMB float64            `json:"cgroup_working_set_mb"`
	Processes    int                `json:"processes"`
	ByProcess    map[string]float64 `json:"pss_mb_by_process"`
	RSSByProcess map[string]float64 `json:"rss_mb_by_process,omitempty"`
}

// sampleMemory sums RSS and PSS over every process in the node's cgroup
// tree (control plane, kubelet, datastore, containerd, shims and the pods'
// processes), and reads the cgroup's own usage.
func sampleMemory(cg *cgroup) (memSample, error) {
	s := memSample{ByProcess: map[string]float64{}, RSSByProcess: map[string]float64{}}
	for _, pid := range cg.pids() {
		rss, pss, err := smapsRollup(pid)
		if err != nil {
			continue // exited meanwhile
		}
		s.Processes++
		s.RSSMB += rss
		s.PSSMB += pss
		label := procLabel(pid)
		s.ByProcess[label] += pss
		s.RSSByProcess[label] += rss
	}
	if s.Processes == 0 {
		return s, fmt.Errorf("no process found in %s", cg.memory)
	}
	usage, err1 := readInt(filepath.Join(cg.memory, "memory.usage_in_bytes"))
	stat, err2 := readStat(filepath.Join(cg.memory, "memory.stat"))
	if err1 == nil && err2 == nil {
		s.CgroupMB = mb(usage)
		s.WorkingSetMB = mb(usage - stat["total_inactive_file"])
	} else if cur, err := readInt(filepath.Join(cg.memory, "memory.current")); err == nil {
		stat, _ := readStat(filepath.Join(cg.memory, "memory.stat"))
		s.CgroupMB = mb(cur)
		s.WorkingSetMB = mb(cur - stat["inactive_file"])
	}
	return s, nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func smapsRollup(pid int) (rss, pss float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss, sc.Err()
}

// procLabel names a process by its program, and kubox's re-executed
// containerd by its subcommand.
func procLabel(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	name := filepath.Base(args[0])
	if name == "kubox" && len(args) > 1 && args[1] == "containerd" {
		return "kubox containerd"
	}
	return name
}

func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

func readStat(path string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			m[k] = n
		}
	}
	return m, nil
}

// topProcesses returns the labels of a sample's processes, largest first.
func topProcesses(m map[string]float64) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	return names
}
