package datastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	_ "github.com/mattn/go-sqlite3" // kine's own driver
)

// liveKeys selects, from kine's SQLite table, the newest row of every key
// that is not deleted: the state an etcd client of kine sees. kine's
// bookkeeping rows (compaction mark, filled revision gaps) are left out.
const liveKeys = `SELECT kv.name, kv.lease, kv.value FROM kine kv
	JOIN (SELECT MAX(id) AS id FROM kine GROUP BY name) newest ON kv.id = newest.id
	WHERE kv.deleted = 0 AND kv.name != 'compact_rev_key' AND kv.name NOT LIKE 'gap-%'`

// migrateSQLite copies the state in kine's SQLite database file into etcd
// through cli, keys with a lease under an etcd lease of the same TTL, and
// then moves the file aside (nothing is deleted). It is safe to repeat: a
// server stopped half-way copies everything again on its next start.
func migrateSQLite(ctx context.Context, file string, cli *clientv3.Client, now time.Time) (keys int, keptAs string, err error) {
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=5000")
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, liveKeys)
	if err != nil {
		return 0, "", fmt.Errorf("cannot read %s: %w", file, err)
	}
	type kv struct {
		key   string
		ttl   int64
		value []byte
	}
	var all []kv
	for rows.Next() {
		var r kv
		if err := rows.Scan(&r.key, &r.ttl, &r.value); err != nil {
			rows.Close()
			return 0, "", fmt.Errorf("cannot read %s: %w", file, err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("cannot read %s: %w", file, err)
	}
	leases := map[int64]clientv3.LeaseID{}
	for _, r := range all {
		var opts []clientv3.OpOption
		if r.ttl > 0 {
			id, ok := leases[r.ttl]
			if !ok {
				grant, err := cli.Grant(ctx, r.ttl)
				if err != nil {
					return 0, "", fmt.Errorf("migrating into etcd: %w", err)
				}
				id, leases[r.ttl] = grant.ID, grant.ID
			}
			opts = append(opts, clientv3.WithLease(id))
		}
		if _, err := cli.Put(ctx, r.key, string(r.value), opts...); err != nil {
			return 0, "", fmt.Errorf("migrating %s into etcd: %w", r.key, err)
		}
	}
	if err := db.Close(); err != nil {
		return 0, "", err
	}
	keptAs = file + ".migrated-" + strconv.FormatInt(now.Unix(), 10)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(file+suffix, keptAs+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, "", fmt.Errorf("migrated into etcd, but cannot move %s aside: %w", file+suffix, err)
		}
	}
	return len(all), keptAs, nil
}
