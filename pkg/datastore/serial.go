package datastore

import (
	"context"
	"strings"
	"sync"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/server"
)

// serialScheme is kine's SQLite driver with kubox's write path: one write
// at a time. kine keeps its drivers in a process-wide registry; the scheme
// is registered there once and carries no state of its own.
const serialScheme = "kubox-sqlite"

var registerSerial sync.Once

// sqliteParams open the database in WAL mode with every commit flushed to
// disk before it is acknowledged (synchronous=FULL): a write the API
// confirmed survives power loss, not only a crash of kubox. The busy
// timeout covers the few writes kine makes outside the API's path
// (compaction, expiring leases).
const sqliteParams = "_journal_mode=WAL&_busy_timeout=30000&_synchronous=FULL&_txlock=immediate&_stmt_cache_size=20&cache=shared"

// serialEndpoint turns an SQLite endpoint (a file, with kine's parameters
// or kubox's) into the kubox-sqlite one.
func serialEndpoint(file string) string {
	registerSerial.Do(func() {
		drivers.Register(serialScheme, func(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (bool, server.Backend, error) {
			leader, b, err := sqlite.New(ctx, wg, cfg)
			if err != nil {
				return false, nil, err
			}
			return leader, &serialWrites{Backend: b}, nil
		})
	})
	if !strings.Contains(file, "?") {
		file += "?" + sqliteParams
	}
	return serialScheme + "://" + file
}

// serialWrites lets one API write at a time into SQLite. SQLite has one
// writer anyway; concurrent writers that find its lock taken sleep in
// SQLite's busy handler (1 ms, then longer, up to 100 ms per try), which
// made writes under concurrency slow and uneven. Waiting on a Go mutex
// instead hands the lock over as soon as it is free.
type serialWrites struct {
	server.Backend
	mu sync.Mutex
}

func (s *serialWrites) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Backend.Create(ctx, key, value, lease)
}

func (s *serialWrites) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Backend.Update(ctx, key, value, revision, lease)
}

func (s *serialWrites) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Backend.Delete(ctx, key, revision)
}
