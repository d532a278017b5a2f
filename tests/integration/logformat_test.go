package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLogFormatJSON: with --log-format json every line a control-plane
// server writes, the embedded upstream components' (klog) and kine's
// (logrus) included, is one JSON object with time, level, component and
// msg, and the components are named. Runs no node.
func TestLogFormatJSON(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	s := newServer(t, "--log-format", "json")
	s.StartReady()
	// The scheduler and controller-manager log once they lead.
	logPath := filepath.Join(s.Dir, "server.log")
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		data, _ := os.ReadFile(logPath)
		if bytes.Contains(data, []byte(`"component":"scheduler"`)) && bytes.Contains(data, []byte(`"component":"controller-manager"`)) {
			break
		}
	}
	s.Stop()
	if code := s.ExitCode(); code != 0 {
		t.Fatalf("kubox server exited %d", code)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		var rec map[string]string
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not a JSON object of strings: %v\n%s", i+1, err, line)
		}
		keys := make([]string, 0, len(rec))
		for k, v := range rec {
			keys = append(keys, k)
			if v == "" && k != "msg" {
				t.Errorf("line %d has an empty %s: %s", i+1, k, line)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"component", "level", "msg", "time"}) {
			t.Fatalf("line %d has keys %v, want component, level, msg, time: %s", i+1, keys, line)
		}
		seen[rec["component"]]++
	}
	t.Logf("lines by component: %v", seen)
	for _, c := range []string{"kubox", "apiserver", "kine", "scheduler", "controller-manager"} {
		if seen[c] == 0 {
			t.Errorf("no line from %s: %v", c, seen)
		}
	}
}
