package datastore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Concurrent writers, as the API server makes them: creates that must not
// overwrite, and compare-and-swap updates of one key that must not lose an
// increment. Every acknowledged write is there after a restart, and a watch
// sees them once each, in revision order.
func TestSQLiteConcurrentWrites(t *testing.T) {
	p := testPaths(t)
	d := start(t, p)
	cli := etcdClient(t, d)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first, err := cli.Put(ctx, "/registry/counter", "0")
	if err != nil {
		t.Fatal(err)
	}
	watch := cli.Watch(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision+1))

	const writers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	increments := make([]int, writers)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("/registry/obj/%d-%d", w, i)
				create := func(v string) (bool, error) {
					r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, v)).Commit()
					if err != nil {
						return false, err
					}
					return r.Succeeded, nil
				}
				if ok, err := create("a"); err != nil || !ok {
					errs <- fmt.Errorf("create %s: succeeded %v, %v", key, ok, err)
					return
				}
				// A second create of the same key is refused.
				if ok, err := create("b"); err != nil || ok {
					errs <- fmt.Errorf("second create %s: succeeded %v, %v", key, ok, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				for {
					g, err := cli.Get(ctx, "/registry/counter")
					if err != nil {
						errs <- err
						return
					}
					kv := g.Kvs[0]
					n, _ := strconv.Atoi(string(kv.Value))
					r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/counter"), "=", kv.ModRevision)).
						Then(clientv3.OpPut("/registry/counter", strconv.Itoa(n+1))).Else(clientv3.OpGet("/registry/counter")).Commit()
					if err != nil {
						errs <- err
						return
					}
					if r.Succeeded {
						increments[w]++
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	total := 0
	for _, n := range increments {
		total += n
	}
	want := writers * each
	if total != want {
		t.Fatalf("%d increments acknowledged, want %d", total, want)
	}

	// The watch: every write once, revisions strictly increasing.
	events, last := 0, first.Header.Revision
	for events < want+writers*each {
		select {
		case r := <-watch:
			if err := r.Err(); err != nil {
				t.Fatalf("watch: %v", err)
			}
			for _, ev := range r.Events {
				if ev.Kv.ModRevision <= last {
					t.Fatalf("watch: revision %d after %d", ev.Kv.ModRevision, last)
				}
				last = ev.Kv.ModRevision
				events++
			}
		case <-ctx.Done():
			t.Fatalf("watch saw %d events, want %d", events, want+writers*each)
		}
	}

	// A progress notification on the watch reports the last revision
	// written, as the API server needs before it serves a consistent read
	// from its cache: after each of a few bursts of concurrent creates.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for burst := range 5 {
		var bwg sync.WaitGroup
		for w := range writers {
			bwg.Add(1)
			go func() {
				defer bwg.Done()
				if _, err := cli.Put(ctx, fmt.Sprintf("/registry/burst/%d-%d", burst, w), "x"); err != nil {
					t.Error(err)
				}
			}()
		}
		bwg.Wait()
		cur, err := cli.Get(ctx, "/registry/counter")
		if err != nil {
			t.Fatal(err)
		}
		progress, deadline := int64(0), time.After(10*time.Second)
		for progress != cur.Header.Revision {
			select {
			case r := <-watch:
				if r.IsProgressNotify() {
					progress = r.Header.Revision
				}
			case <-tick.C:
				if err := cli.RequestProgress(ctx); err != nil {
					t.Fatal(err)
				}
			case <-deadline:
				t.Fatalf("burst %d: watch progress at revision %d, want %d", burst, progress, cur.Header.Revision)
			}
		}
	}

	cli.Close()
	stop(t, d)
	d2 := start(t, p)
	cli2 := etcdClient(t, d2)
	defer cli2.Close()
	g, err := cli2.Get(ctx, "/registry/counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(g.Kvs[0].Value); got != strconv.Itoa(want) {
		t.Errorf("counter after restart = %s, want %d", got, want)
	}
	objs, err := cli2.Get(ctx, "/registry/obj/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if objs.Count != writers*each {
		t.Errorf("%d objects after restart, want %d", objs.Count, writers*each)
	}
	v, err := cli2.Get(ctx, "/registry/obj/3-7")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Kvs) != 1 || string(v.Kvs[0].Value) != "a" {
		t.Errorf("/registry/obj/3-7 = %v, want the first create's value", v.Kvs)
	}
}
