package integration

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterInit: --cluster-init on a server that ran on SQLite moves its
// state into an etcd member inside the server. Its port takes only
// clients with a certificate from its CA; snapshots use etcd's snapshot
// API and restore with --cluster-reset; a restart without the flag keeps
// the member and the state; a port already taken is one clear line.
func TestClusterInit(t *testing.T) {
	s := newServer(t)
	s.StartReady()
	s.MustKubectl("create", "namespace", "from-sqlite")
	s.MustKubectl("create", "configmap", "from-sqlite", "--from-literal", "k=v")
	s.Stop()
	s.Args = append(s.Args, "--cluster-init")
	s.StartReady()
	if out := s.MustKubectl("get", "configmap", "from-sqlite", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("the ConfigMap made on SQLite reads %q in etcd", out)
	}
	if log := s.tail(1 << 20); !strings.Contains(log, "keys from SQLite into etcd") {
		t.Errorf("the log does not say the state was moved into etcd:\n%s", lastLines(log, 30))
	}
	s.MustKubectl("create", "namespace", "kept-in-etcd")
	if _, err := os.Stat(filepath.Join(s.DataDir, "server", "db", "etcd", "member")); err != nil {
		t.Fatalf("no etcd member in the data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "server", "db", "state.db")); err == nil {
		t.Error("the SQLite database is still in use beside the etcd member")
	}
	if kept, _ := filepath.Glob(filepath.Join(s.DataDir, "server", "db", "state.db.migrated-*")); len(kept) == 0 {
		t.Error("the SQLite database was not kept aside after the move")
	}

	// Mutual TLS only: a client without a certificate is turned away.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // only the refusal is checked
	if resp, err := c.Get("https://127.0.0.1:2379/version"); err == nil {
		resp.Body.Close()
		t.Fatalf("etcd answered a client without a certificate: %s", resp.Status)
	}

	out, err := run(s.bin, []string{"snapshot", "save", "--name", "one", "--config", s.ConfigFile, "--data-dir", s.DataDir}, nil)
	if err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	if out, err = run(s.bin, []string{"snapshot", "ls", "-o", "json", "--config", s.ConfigFile, "--data-dir", s.DataDir}, nil); err != nil || !strings.Contains(out, `"datastore": "etcd"`) {
		t.Fatalf("snapshot ls: %v\n%s", err, out)
	}
	if out, err = run(s.bin, []string{"certificate", "check", "--config", s.ConfigFile, "--data-dir", s.DataDir}, nil); err != nil || !strings.Contains(out, "etcd-server") {
		t.Fatalf("certificate check lists no etcd certificate: %v\n%s", err, out)
	}

	s.MustKubectl("create", "namespace", "after-snapshot")

	// A restart without the flag keeps the member and its state.
	s.Stop()
	s.Args = []string{"--disable-agent"}
	s.StartReady()
	s.MustKubectl("get", "namespace", "kept-in-etcd", "after-snapshot")
	s.Stop()

	// Restore: the state as of the snapshot, the replaced member kept.
	snaps, _ := filepath.Glob(filepath.Join(s.DataDir, "server", "db", "snapshots", "one-*"))
	var file string
	for _, f := range snaps {
		if !strings.HasSuffix(f, ".json") {
			file = f
		}
	}
	if file == "" {
		t.Fatalf("no snapshot file among %v", snaps)
	}
	s.Args = []string{"--disable-agent", "--cluster-reset", "--cluster-reset-restore-path", file}
	s.StartReady()
	s.MustKubectl("get", "namespace", "kept-in-etcd")
	if out, err := s.Kubectl("get", "namespace", "after-snapshot"); err == nil {
		t.Fatalf("after the restore, a namespace made after the snapshot is there:\n%s", out)
	}
	if kept, _ := filepath.Glob(filepath.Join(s.DataDir, "server", "db", "pre-restore-*", "etcd", "member")); len(kept) != 1 {
		t.Errorf("the replaced member was not kept aside: %v", kept)
	}
	s.MustKubectl("create", "namespace", "after-restore")
	s.Stop()
	// The same flags again do not roll back a second time; --cluster-reset
	// alone restarts the member as a one-member cluster from its own data.
	s.StartReady()
	s.MustKubectl("get", "namespace", "after-restore")
	s.Stop()
	s.Args = []string{"--disable-agent", "--cluster-reset"}
	s.StartReady()
	s.MustKubectl("get", "namespace", "after-restore", "kept-in-etcd")
	s.Stop()

	// Its ports taken: one line, non-zero exit.
	l, err := net.Listen("tcp", "127.0.0.1:2379")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := newServer(t, "--cluster-init")
	taken.Start()
	select {
	case <-taken.exited:
	case <-time.After(time.Minute):
		t.Fatal("kubox kept running with etcd's port taken")
	}
	if code := taken.ExitCode(); code == 0 {
		t.Error("exit code 0 with etcd's port taken")
	}
	if log := taken.tail(3); !strings.Contains(log, "embedded etcd cannot listen on its ports 2379 and 2380") {
		t.Errorf("the failure does not say the port is taken:\n%s", log)
	}
}
