package datastore

import (
	"context"
	"strings"
	"sync"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/logstructured"
	"github.com/k3s-io/kine/pkg/logstructured/sqllog"
	"github.com/k3s-io/kine/pkg/server"
)

// sqliteScheme is kine's SQLite driver with kubox's write path: appends
// committed in groups, one writer at a time (groupCommit). kine keeps its
// drivers in a process-wide registry; the scheme is registered there once
// and carries no state of its own.
const sqliteScheme = "kubox-sqlite"

var registerSQLite sync.Once

// sqliteParams open the database in WAL mode with every commit flushed to
// disk before it is acknowledged (synchronous=FULL): a write the API
// confirmed survives power loss, not only a crash of kubox. The busy
// timeout covers the few writes kine makes outside the API's path
// (compaction, filling a revision gap).
const sqliteParams = "_journal_mode=WAL&_busy_timeout=30000&_synchronous=FULL&_txlock=immediate&_stmt_cache_size=20&cache=shared"

// sqliteEndpoint turns an SQLite endpoint (a file, with kine's parameters
// or kubox's) into the kubox-sqlite one.
func sqliteEndpoint(file string) string {
	registerSQLite.Do(func() {
		drivers.Register(sqliteScheme, func(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (bool, server.Backend, error) {
			// kine's own SQLite set-up (schema, WAL, vacuum), then its log
			// over the grouping dialect instead of the plain one.
			_, dialect, err := sqlite.NewVariant(ctx, wg, "sqlite3", cfg)
			if err != nil {
				return false, nil, err
			}
			g := newGroupCommit(ctx, wg, dialect)
			return false, &groupBackend{Backend: logstructured.New(sqllog.New(g, wg, cfg)), g: g}, nil
		})
	})
	if !strings.Contains(file, "?") {
		file += "?" + sqliteParams
	}
	return sqliteScheme + "://" + file
}
