package integration

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const keeperPod = `apiVersion: v1
kind: Pod
metadata: {name: keeper, namespace: default}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: echo
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [serve, --port, "8080"]
`

// startNodeWithKeeper starts a node server with args and runs the pod
// keeper on it, Ready.
func startNodeWithKeeper(t *testing.T, args ...string) *server {
	t.Helper()
	images := testImages(t)
	s := startNode(t, args...)
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	f := filepath.Join(t.TempDir(), "keeper.yaml")
	os.WriteFile(f, []byte(keeperPod), 0o644)
	s.MustKubectl("apply", "-f", f)
	if out, err := s.Kubectl("wait", "pod/keeper", "--for=condition=Ready", "--timeout=180s"); err != nil {
		t.Fatalf("pod keeper not Ready: %v\n%s", err, out)
	}
	return s
}

// TestSnapshotRestore: a snapshot taken while the server runs brings the
// cluster back to that moment; the node and its pod come back; a bad
// snapshot and a restore under a running server are refused; scheduled
// snapshots keep their retention.
func TestSnapshotRestore(t *testing.T) {
	s := startNodeWithKeeper(t)
	s.MustKubectl("create", "configmap", "a", "--from-literal=k=A")

	// Every certificate the node uses is listed, with a year left.
	out, err := run(s.bin, []string{"certificate", "check", "--config", s.ConfigFile, "--data-dir", s.DataDir, "-o", "json"}, nil)
	if err != nil {
		t.Fatalf("kubox certificate check: %v\n%s", err, out)
	}
	var certs []struct {
		Name     string `json:"name"`
		DaysLeft int    `json:"daysLeft"`
	}
	if err := json.Unmarshal([]byte(out), &certs); err != nil {
		t.Fatalf("kubox certificate check -o json: %v\n%s", err, out)
	}
	left := map[string]int{}
	for _, c := range certs {
		left[c.Name] = c.DaysLeft
	}
	for _, name := range []string{"serving-kube-apiserver", "client-admin", "server-ca", "kubelet-ca", "client-node"} {
		if d, ok := left[name]; !ok || d < 364 {
			t.Errorf("certificate check: %s has %d days left (listed: %v)", name, d, ok)
		}
	}

	// The subcommand, then the flags, then any arguments.
	snap := func(cmd string, args ...string) (string, error) {
		return run(s.bin, append([]string{"snapshot", cmd, "--config", s.ConfigFile, "--data-dir", s.DataDir}, args...), nil)
	}
	out, err = snap("save", "--name", "before")
	if err != nil {
		t.Fatalf("kubox snapshot save: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`saved snapshot (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kubox snapshot save said %q", out)
	}
	file := filepath.Join(s.DataDir, "server", "db", "snapshots", m[1])
	if out, err := snap("ls"); err != nil || !strings.Contains(out, m[1]) {
		t.Fatalf("kubox snapshot ls does not list %s: %v\n%s", m[1], err, out)
	}

	s.MustKubectl("create", "configmap", "b", "--from-literal=k=B")
	s.MustKubectl("delete", "configmap", "a")

	// The server holds its data dir: no restore under it.
	if out, err := snap("restore", file); err == nil || !strings.Contains(out, "is running") {
		t.Fatalf("restore under a running server: %v\n%s", err, out)
	}
	s.Stop()

	// A truncated snapshot is refused and changes nothing.
	db := filepath.Join(s.DataDir, "server", "db", "state.db")
	sum := fileSum(t, db)
	bad := filepath.Join(t.TempDir(), m[1])
	data, _ := os.ReadFile(file)
	os.WriteFile(bad, data[:len(data)/2], 0o600)
	meta, _ := os.ReadFile(file + ".json")
	os.WriteFile(bad+".json", meta, 0o600)
	out, err = run(s.bin, append(s.argv(), "--cluster-reset", "--cluster-reset-restore-path", bad), nil)
	if err == nil || !strings.Contains(lastLine(out), "corrupt or truncated") {
		t.Fatalf("restore of a truncated snapshot: %v\n%s", err, out)
	}
	if fileSum(t, db) != sum {
		t.Fatal("a refused restore changed the database")
	}

	// Scheduled snapshots every 5 s from now on, one kept.
	s.Args = append(s.Args, "--cluster-reset", "--cluster-reset-restore-path", file,
		"--snapshot-schedule-cron", "@every 5s", "--snapshot-retention", "1")
	s.StartReady()
	if v, err := s.Kubectl("get", "configmap", "a", "-o", "jsonpath={.data.k}"); err != nil || v != "A" {
		t.Errorf("configmap a after restore: %q, %v; want A", v, err)
	}
	if out, err := s.Kubectl("get", "configmap", "b"); err == nil {
		t.Errorf("configmap b, created after the snapshot, is back:\n%s", out)
	}
	waitFor(t, "node Ready and pod keeper Running after the restore", 3*time.Minute, func() (bool, string) {
		nodes, _ := s.Kubectl("get", "nodes", "--no-headers")
		pod, _ := s.Kubectl("get", "pod", "keeper", "--no-headers")
		return strings.Contains(nodes, " Ready ") && strings.Contains(pod, " Running "), nodes + pod
	})
	s.MustKubectl("create", "configmap", "c", "--from-literal=k=C")

	// Restarted with the same flags, as a service would be: no second
	// roll-back.
	s.Stop()
	s.StartReady()
	if _, err := s.Kubectl("get", "configmap", "c"); err != nil {
		t.Errorf("configmap c, created after the restore, is gone after a restart with the same flags: %v", err)
	}
	if !strings.Contains(s.logSinceStart(), "restored at") {
		t.Errorf("no log line saying the snapshot was restored already")
	}

	waitFor(t, "scheduled snapshots pruned to 1", 3*time.Minute, func() (bool, string) {
		out, _ := snap("ls")
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "scheduled-") {
				n++
			}
		}
		return n == 1 && strings.Contains(s.tail(2000), "removed snapshot"), fmt.Sprintf("%d scheduled\n%s", n, out)
	})
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}
