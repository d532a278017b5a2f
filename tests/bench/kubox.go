package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// kuboxTarget runs `kubox server` (with its node) on SQLite, or on the same
// etcd as the baseline when etcd is set.
type kuboxTarget struct {
	name, label string
	bin         string
	dir         string
	logDir      string
	cg          *cgroup
	etcd        *etcdServer
	p           *proc
}

func newKubox(name, label, bin, dir, logDir string, cg *cgroup, etcd *etcdServer) *kuboxTarget {
	return &kuboxTarget{name: name, label: label, bin: bin, dir: dir, logDir: logDir, cg: cg, etcd: etcd}
}

func (k *kuboxTarget) Name() string       { return k.name }
func (k *kuboxTarget) Label() string      { return k.label }
func (k *kuboxTarget) Cgroup() *cgroup    { return k.cg }
func (k *kuboxTarget) dataDir() string    { return filepath.Join(k.dir, "data") }
func (k *kuboxTarget) runDir() string     { return filepath.Join(k.dir, "run") }
func (k *kuboxTarget) Kubeconfig() string { return filepath.Join(k.dir, "kubeconfig.yaml") }
func (k *kuboxTarget) APIURL() string     { return apiURL }

func (k *kuboxTarget) DataDirs() map[string]string {
	m := map[string]string{"data dir": k.dataDir()}
	if k.etcd != nil {
		m["etcd"] = k.etcd.dataDir
	}
	return m
}

func (k *kuboxTarget) SQLiteFiles() (string, string) {
	if k.etcd != nil {
		return "", ""
	}
	db := filepath.Join(k.dataDir(), "server", "db", "state.db")
	return db, db + "-wal"
}

func (k *kuboxTarget) Start(ctx context.Context, o startOpts) error {
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return err
	}
	config := filepath.Join(k.dir, "config.yaml")
	resolv := filepath.Join(k.dir, "resolv.conf")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(resolv, []byte("nameserver "+noResolver+"\n"), 0o644); err != nil {
		return err
	}
	args := []string{k.bin, "server",
		"--config", config,
		"--data-dir", k.dataDir(),
		"--run-dir", k.runDir(),
		"--node-name", "bench",
		"--node-ip", nodeIP,
		"--write-kubeconfig", k.Kubeconfig(),
		"--resolv-conf", resolv,
	}
	if k.etcd != nil {
		if err := k.etcd.start(k.cg); err != nil {
			return err
		}
		args = append(args, "--datastore-endpoint", k.etcd.URL,
			"--datastore-cafile", k.etcd.CA, "--datastore-certfile", k.etcd.Cert, "--datastore-keyfile", k.etcd.Key)
	}
	args = append(args, o.ExtraArgs...)
	p, err := startProc(k.cg, k.logDir, "kubox", o.Env, args...)
	if err != nil {
		return err
	}
	k.p = p
	return nil
}

func (k *kuboxTarget) Stop() {
	if k.p != nil {
		k.p.stop(time.Minute)
		k.p = nil
	}
	if k.etcd != nil {
		k.etcd.stop()
	}
}

// Wipe stops kubox, then `kubox killall` removes its containers, mounts,
// interfaces and cgroups, and the state goes.
func (k *kuboxTarget) Wipe() error {
	k.Stop()
	if _, err := os.Stat(k.dataDir()); err == nil {
		if out, err := runIn(k.cg, 2*time.Minute, k.bin, "killall", "--data-dir", k.dataDir(), "--run-dir", k.runDir()); err != nil {
			return fmt.Errorf("kubox killall: %v\n%s", err, out)
		}
	}
	if k.etcd != nil {
		if err := k.etcd.wipe(); err != nil {
			return err
		}
	}
	return os.RemoveAll(k.dir)
}

func (k *kuboxTarget) Failure() string {
	if k.p == nil {
		return "kubox is not running"
	}
	if k.p.exited() {
		return "kubox exited:\n" + k.p.tail(15)
	}
	return "last lines of kubox's log:\n" + k.p.tail(15)
}
