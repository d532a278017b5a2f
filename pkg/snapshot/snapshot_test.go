package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/datastore"
)

// kine runs the real datastore on dataDir and returns a client to it.
func kine(t *testing.T, p paths.Paths) (*clientv3.Client, func()) {
	t.Helper()
	ds := datastore.New(config.Datastore{}, p)
	if err := ds.Start(context.Background(), func(error) {}); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ds.Endpoint().Servers, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return cli, func() {
		cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ds.Stop(ctx); err != nil {
			t.Error(err)
		}
	}
}

func newPaths(t *testing.T) paths.Paths {
	d := t.TempDir()
	return paths.New(d, d, filepath.Join(d, "run"))
}

func store(p paths.Paths, clock *time.Time) Store {
	return Store{Dir: p.SnapshotDir, Node: "n1", Paths: p, Now: func() time.Time { *clock = clock.Add(time.Second); return *clock }}
}

func get(t *testing.T, cli *clientv3.Client, key string) (string, bool) {
	t.Helper()
	r, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) == 0 {
		return "", false
	}
	return string(r.Kvs[0].Value), true
}

// del deletes key as the API server does: kine serves deletes only in a
// transaction on the key's revision.
func del(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	ctx := context.Background()
	r, err := cli.Get(ctx, key)
	if err != nil || len(r.Kvs) != 1 {
		t.Fatalf("get %s: %v", key, err)
	}
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", r.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("delete %s: %v", key, err)
	}
}

// fixture is a running kine holding /registry/a = A, and a snapshot
// store on it whose clock moves a second per snapshot.
type fixture struct {
	p     paths.Paths
	clock *time.Time
	s     Store
	cli   *clientv3.Client
	stop  func()
}

func seeded(t *testing.T) fixture {
	t.Helper()
	f := fixture{p: newPaths(t), clock: new(time.Time)}
	*f.clock = time.Unix(1_800_000_000, 0)
	f.s = store(f.p, f.clock)
	f.cli, f.stop = kine(t, f.p)
	if _, err := f.cli.Put(context.Background(), "/registry/a", "A"); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSaveAndRestore(t *testing.T) {
	ctx := context.Background()
	f := seeded(t)
	p, clock, s, cli, stop := f.p, *f.clock, f.s, f.cli, f.stop
	m, err := s.Save(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "test-n1-1800000001" || m.Datastore != "sqlite" || len(m.SHA256) != 64 {
		t.Fatalf("metadata %+v", m)
	}
	if _, err := cli.Put(ctx, "/registry/b", "B"); err != nil {
		t.Fatal(err)
	}
	del(t, cli, "/registry/a")
	before, err := cli.Get(ctx, "/registry/b")
	if err != nil {
		t.Fatal(err)
	}
	oldRev := before.Header.Revision
	stop()

	r, err := RestoreSQLite(ctx, m.Path, p.SQLiteFile, clock)
	if err != nil {
		t.Fatal(err)
	}
	if r.PreRestore == "" {
		t.Fatal("no pre-restore copy kept")
	}
	if _, err := os.Stat(filepath.Join(r.PreRestore, "state.db")); err != nil {
		t.Fatalf("pre-restore copy: %v", err)
	}
	if last, ok := LastRestore(p.SQLiteFile); !ok || last.SHA256 != m.SHA256 {
		t.Fatalf("restore not recorded: %+v", last)
	}

	cli, stop = kine(t, p)
	defer stop()
	if v, ok := get(t, cli, "/registry/a"); !ok || v != "A" {
		t.Fatalf("/registry/a after restore = %q, %v; want A", v, ok)
	}
	if _, ok := get(t, cli, "/registry/b"); ok {
		t.Fatal("/registry/b, created after the snapshot, is still there")
	}
	// Revisions go on from the replaced database's; a watch from one of
	// its revisions is told to list afresh.
	w, err := cli.Put(ctx, "/registry/c", "C")
	if err != nil {
		t.Fatal(err)
	}
	if w.Header.Revision <= oldRev {
		t.Fatalf("revision after restore %d, not past %d", w.Header.Revision, oldRev)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp := <-cli.Watch(wctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(oldRev))
	if !errors.Is(resp.Err(), rpctypes.ErrCompacted) {
		t.Fatalf("watch from a replaced revision: %v, want compacted", resp.Err())
	}
}

// A snapshot taken under a steady write load holds every write
// acknowledged before it started.
func TestSaveUnderLoad(t *testing.T) {
	ctx := context.Background()
	f := seeded(t)
	clock, s, cli, stop := *f.clock, f.s, f.cli, f.stop
	var acked atomic.Int64
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				n := acked.Load()
				if _, err := cli.Put(wctx, fmt.Sprintf("/registry/w%d/%d", w, n), "x"); err == nil {
					acked.Add(1)
				}
			}
		}()
	}
	for acked.Load() < 200 {
		time.Sleep(10 * time.Millisecond) // let the load build up
	}
	// Every key acknowledged before Save starts.
	r, err := cli.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Save(ctx, "load")
	cancel()
	wg.Wait()
	stop()
	if err != nil {
		t.Fatal(err)
	}
	q := newPaths(t)
	if _, err := RestoreSQLite(ctx, m.Path, q.SQLiteFile, clock); err != nil {
		t.Fatal(err)
	}
	cli, stop = kine(t, q)
	defer stop()
	for _, kv := range r.Kvs {
		if _, ok := get(t, cli, string(kv.Key)); !ok {
			t.Fatalf("%s was acknowledged before the snapshot but is not in it", kv.Key)
		}
	}
	t.Logf("%d keys checked, %d writes during the test", len(r.Kvs), acked.Load())
}

func TestRefusesBadSnapshot(t *testing.T) {
	ctx := context.Background()
	f := seeded(t)
	p, clock, s, stop := f.p, *f.clock, f.s, f.stop
	m, err := s.Save(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	orig, err := os.ReadFile(p.SQLiteFile)
	if err != nil {
		t.Fatal(err)
	}

	// Truncated: the metadata's hash catches it.
	if err := os.Truncate(m.Path, m.Size/2); err != nil {
		t.Fatal(err)
	}
	_, err = RestoreSQLite(ctx, m.Path, p.SQLiteFile, clock)
	if err == nil || !strings.Contains(err.Error(), "corrupt or truncated") {
		t.Fatalf("truncated snapshot: %v", err)
	}
	// Without metadata: SQLite's own checks catch it.
	os.Remove(m.Path + metaSuffix)
	if _, err = RestoreSQLite(ctx, m.Path, p.SQLiteFile, clock); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("truncated snapshot without metadata: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a database at all, just bytes"), 0o600)
	if _, err = RestoreSQLite(ctx, junk, p.SQLiteFile, clock); err == nil || !strings.Contains(err.Error(), "not an SQLite snapshot") {
		t.Fatalf("junk file: %v", err)
	}
	now, err := os.ReadFile(p.SQLiteFile)
	if err != nil || string(now) != string(orig) {
		t.Fatal("a refused restore changed the database")
	}
	if _, ok := LastRestore(p.SQLiteFile); ok {
		t.Fatal("a refused restore was recorded")
	}
}

func TestListPruneDelete(t *testing.T) {
	ctx := context.Background()
	f := seeded(t)
	s := f.s
	defer f.stop()
	for i := 0; i < 4; i++ {
		if _, err := s.Save(ctx, "scheduled"); err != nil {
			t.Fatal(err)
		}
	}
	keep, err := s.Save(ctx, "on-demand")
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := s.Prune(ctx, "scheduled", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 2 || !strings.HasSuffix(deleted[0], "/scheduled-n1-1800000001") {
		t.Fatalf("pruned %v", deleted)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	want := "scheduled-n1-1800000003 scheduled-n1-1800000004 on-demand-n1-1800000005"
	if strings.Join(names, " ") != want {
		t.Fatalf("listed %v, want %s", names, want)
	}
	if err := s.Delete(ctx, keep.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, keep.Name); err == nil || !strings.Contains(err.Error(), "no snapshot") {
		t.Fatalf("deleting twice: %v", err)
	}
	if err := s.Delete(ctx, "../state.db"); err == nil {
		t.Fatal("deleted outside the snapshot directory")
	}
	if _, err := s.Save(ctx, "Bad Name"); err == nil {
		t.Fatal("saved under an invalid name")
	}
}
