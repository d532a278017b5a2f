package datastore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// keepCurrentInterval is how often a server on a shared SQL datastore
// writes its own key, and keepCurrentTTL how long the key outlives the
// server.
const (
	keepCurrentInterval = time.Second
	keepCurrentTTL      = 30
)

// keepCurrent writes this server's key under /kubox/servers/ through its
// own kine every second while kine runs. kine v0.17 follows the current
// revision it reports (in watch progress notifications, which the API
// server's watch caches wait for) by compare-and-swap from its poll loop
// and from its own writes; when another server's rows land between its
// start-up reads, only a write of its own moves the revision on again.
// Without one the API server of a server that just started waits for its
// caches until its post-start hooks time out.
func keepCurrent(ctx context.Context, wg *sync.WaitGroup, endpoints []string, socket string) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: nopZap()})
	if err != nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cli.Close()
		rec := &Record{cli: cli, key: "/kubox/servers/" + serverID(socket)}
		t := time.NewTicker(keepCurrentInterval)
		defer t.Stop()
		for {
			_ = rec.touch(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// touch replaces the record's value with the time, under a lease that
// lets it expire once the server is gone.
func (r *Record) touch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if r.lease == 0 {
		lease, err := r.cli.Grant(ctx, keepCurrentTTL)
		if err != nil {
			return err
		}
		r.lease = lease.ID
	}
	_, rev, err := r.Get(ctx)
	if err != nil {
		return err
	}
	_, err = r.Put(ctx, []byte(time.Now().UTC().Format(time.RFC3339)), rev)
	return err
}

// serverID tells the servers on one database apart: host name and data
// dir (by its kine socket).
func serverID(socket string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + socket + "\x00" + strconv.Itoa(os.Getuid())))
	return hex.EncodeToString(sum[:8])
}
