package datastore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// BootstrapKey is where a SQL datastore keeps the servers' sealed shared
// files (pkg/bootstrap), outside the API server's /registry prefix.
const BootstrapKey = "/kubox/bootstrap"

// Shared reports whether servers share this datastore, and so keep their
// shared files in it: an external Postgres or MySQL database.
func (d *Datastore) Shared() bool {
	k := d.cfg.Kind()
	return d.cfg.Etcd == nil && (k == "postgres" || k == "mysql")
}

// Record is one key of the datastore, read and replaced as a whole with
// compare-and-swap on its revision.
type Record struct {
	cli   *clientv3.Client
	key   string
	lease clientv3.LeaseID // 0: none
}

// Get returns the record's value and revision; revision 0 when it is absent.
func (r *Record) Get(ctx context.Context) ([]byte, int64, error) {
	resp, err := r.cli.Get(ctx, r.key)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// Put writes data if the record is still at revision rev (0: absent). The
// two transaction forms are the ones kine serves: create, and update with
// a read on failure.
func (r *Record) Put(ctx context.Context, data []byte, rev int64) (bool, error) {
	var opts []clientv3.OpOption
	if r.lease != 0 {
		opts = append(opts, clientv3.WithLease(r.lease))
	}
	txn := r.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(r.key), "=", rev)).Then(clientv3.OpPut(r.key, string(data), opts...))
	if rev != 0 {
		txn = txn.Else(clientv3.OpGet(r.key))
	}
	resp, err := txn.Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// WithRecord runs fn with the datastore's record at key before the
// datastore component starts: a kine of its own, on a socket beside the
// server's, serves it for the time fn runs. It fails like Start when the
// database cannot be reached.
func (d *Datastore) WithRecord(ctx context.Context, key string, fn func(*Record) error) error {
	if !d.Shared() {
		return errors.New("only an external SQL datastore holds records for kubox")
	}
	socket := filepath.Join(filepath.Dir(d.paths.KineSocket), "kine-bootstrap.sock")
	etcd, cancel, wg, err := d.listen(ctx, d.cfg.Endpoint, socket)
	if err != nil {
		return err
	}
	defer func() { cancel(); wg.Wait() }()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, DialTimeout: d.ReachTimeout, Logger: nopZap()})
	if err != nil {
		return fmt.Errorf("cannot reach kine: %w", err)
	}
	defer cli.Close()
	return fn(&Record{cli: cli, key: key})
}

// Where is the datastore's endpoint for messages, passwords masked.
func (d *Datastore) Where() string { return redact(d.cfg.Endpoint) }
