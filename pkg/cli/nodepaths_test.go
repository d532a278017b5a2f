package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNodePaths: ctr and crictl find the node's socket from the
// config file (its other keys ignored), and KUBOX_DATA_DIR wins over it.
func TestNodePaths(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("data-dir: /srv/kubox\nrun-dir: /run/kbx\nnode-name: n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBOX_CONFIG_FILE", cfg)
	p, err := nodePaths()
	if err != nil {
		t.Fatal(err)
	}
	if p.ContainerdSocket != "/run/kbx/containerd/containerd.sock" || p.DataDir != "/srv/kubox" {
		t.Errorf("socket %s, data dir %s; want the config file's", p.ContainerdSocket, p.DataDir)
	}
	t.Setenv("KUBOX_DATA_DIR", "/srv/other")
	if p, err = nodePaths(); err != nil || p.DataDir != "/srv/other" {
		t.Errorf("with KUBOX_DATA_DIR: %s, %v", p.DataDir, err)
	}
	if err := os.WriteFile(cfg, []byte("data-dir: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := nodePaths(); err == nil {
		t.Errorf("a broken config file was accepted")
	}
}
