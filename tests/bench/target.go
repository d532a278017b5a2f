package main

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// target is one way of running Kubernetes: kubox on SQLite, kubox on etcd,
// the upstream components as separate processes, three kubox servers, or
// a kubox agent joined to a server.
type target interface {
	Name() string  // short key: kubox, kubox-etcd, baseline, kubox-ha, kubox-agent
	Label() string // for tables
	// Start launches the node on whatever state it has (none: first start).
	// It returns once the processes run; the caller measures readiness.
	Start(ctx context.Context, opts startOpts) error
	// Stop ends the node's processes; containers and state stay.
	Stop()
	// Wipe removes every container, mount and byte of state.
	Wipe() error
	Kubeconfig() string
	APIURL() string // where the bench reaches the API, from the host
	Cgroup() *cgroup
	// DataDirs names what the node keeps on disk, for the size report.
	DataDirs() map[string]string
	// SQLiteFiles are the SQLite database and WAL, if the target has them.
	SQLiteFiles() (db, wal string)
	// Failure describes why the node is not up, from its logs.
	Failure() string
}

// startOpts vary a start for one measurement.
type startOpts struct {
	ExtraArgs []string // kubox only
	Env       []string // kubox only
}

// pauseImage is the image the bench's own pods run: it is on every node
// the bench starts, kubox's by construction and the baseline's by import.
type imagesInfo struct {
	Pause   string
	CoreDNS string
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
