package datastore

import (
	"context"
	"testing"
)

// A Record is replaced only at the revision it was read at, as the servers'
// shared record and their own keys need; a touched key carries a lease.
func TestRecord(t *testing.T) {
	d := start(t, testPaths(t))
	cli := etcdClient(t, d)
	defer cli.Close()
	ctx := context.Background()
	rec := &Record{cli: cli, key: "/kubox/test"}

	if data, rev, err := rec.Get(ctx); err != nil || rev != 0 || data != nil {
		t.Fatalf("Get of a new key = %q, %d, %v; want nothing", data, rev, err)
	}
	if ok, err := rec.Put(ctx, []byte("one"), 0); err != nil || !ok {
		t.Fatalf("create: %v, %v", ok, err)
	}
	if ok, err := rec.Put(ctx, []byte("again"), 0); err != nil || ok {
		t.Fatalf("a second create: %v, %v; want refused", ok, err)
	}
	data, rev, err := rec.Get(ctx)
	if err != nil || string(data) != "one" || rev == 0 {
		t.Fatalf("Get = %q, %d, %v", data, rev, err)
	}
	if ok, err := rec.Put(ctx, []byte("two"), rev); err != nil || !ok {
		t.Fatalf("update: %v, %v", ok, err)
	}
	if ok, err := rec.Put(ctx, []byte("stale"), rev); err != nil || ok {
		t.Fatalf("update at a stale revision: %v, %v; want refused", ok, err)
	}

	own := &Record{cli: cli, key: "/kubox/servers/test"}
	for range 2 {
		if err := own.touch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.Get(ctx, own.key)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("a touched key: %+v, %v; want one key with a lease", resp, err)
	}
}
