package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// startEtcd runs a real etcd server (Debian's etcd-server, installed by
// scripts/install-deps.sh) on loopback and returns its client URL.
func startEtcd(t *testing.T) string { return runEtcd(t, "") }

// runEtcd starts etcd, on a data dir restored from snapshot by etcd's own
// tool (etcdctl, Debian's etcd-client) when snapshot is not empty.
func runEtcd(t *testing.T, snapshot string) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd not found: run scripts/install-deps.sh (Debian package etcd-server)")
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	if snapshot != "" {
		out, err := run("etcdctl", []string{"snapshot", "restore", snapshot, "--name", "test", "--data-dir", filepath.Join(dir, "data"),
			"--initial-cluster", "test=" + peer, "--initial-advertise-peer-urls", peer}, []string{"ETCDCTL_API=3"})
		if err != nil {
			t.Fatalf("etcdctl snapshot restore: %v\n%s", err, out)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", client[len("http://"):]); err == nil {
			c.Close()
			return client
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("etcd did not listen on %s", client)
	return ""
}

// TestEtcd runs the API and durability checks with the state in a real etcd.
func TestEtcd(t *testing.T) {
	endpoint := startEtcd(t)
	s := newServer(t, "--datastore-endpoint", endpoint)
	s.StartReady()
	exerciseAPI(t, s, "embedded", s.Kubectl)
	if host := hostKubectl(s); host != nil {
		exerciseAPI(t, s, "host", host)
	}
	checkDurability(t, s)
	// kubox keeps no state of its own when etcd holds it.
	if _, err := os.Stat(filepath.Join(s.DataDir, "server", "db", "state.db")); err == nil {
		t.Fatalf("an SQLite database was created although --datastore-endpoint points at etcd")
	}

	// A snapshot taken through kubox restores with etcd's own tool, and a
	// server on the restored etcd sees the cluster as it was.
	out, err := run(s.bin, []string{"snapshot", "save", "--config", s.ConfigFile, "--data-dir", s.DataDir, "--datastore-endpoint", endpoint, "--name", "etcd"}, nil)
	if err != nil {
		t.Fatalf("kubox snapshot save: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`saved snapshot (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kubox snapshot save said %q", out)
	}
	s.Stop()
	restored := runEtcd(t, filepath.Join(s.DataDir, "server", "db", "snapshots", m[1]))
	s2 := newServer(t, "--datastore-endpoint", restored)
	s2.StartReady()
	if v, err := s2.Kubectl("get", "configmap", "kept", "-n", "durable", "-o", "jsonpath={.data.k}"); err != nil || v != "v" {
		t.Fatalf("configmap durable/kept on the restored etcd: %q, %v", v, err)
	}
}
