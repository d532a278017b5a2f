package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	secretA = strings.Repeat("ab", 32)
	secretB = strings.Repeat("cd", 32)
)

func TestSealOpen(t *testing.T) {
	files := map[string]File{"tls/server-ca.key": {Content: []byte("key"), ModTime: time.Unix(100, 0).UTC()}}
	sealed, err := Seal(secretA, files)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "key\"") || strings.Contains(string(sealed), "server-ca") {
		t.Errorf("the sealed record shows its content: %q", sealed)
	}
	got, err := Open(secretA, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if string(got["tls/server-ca.key"].Content) != "key" || !got["tls/server-ca.key"].ModTime.Equal(time.Unix(100, 0)) {
		t.Errorf("Open = %+v", got)
	}
	if _, err := Open(secretB, sealed); !errors.Is(err, ErrWrongToken) {
		t.Errorf("Open with another secret: %v, want ErrWrongToken", err)
	}
	if _, err := Open(secretA, []byte("not a record")); err == nil || errors.Is(err, ErrWrongToken) {
		t.Errorf("Open of garbage: %v, want a damaged-record error", err)
	}
}

func TestMerge(t *testing.T) {
	old, now := time.Unix(100, 0), time.Unix(200, 0)
	f := func(c string, at time.Time) File { return File{Content: []byte(c), ModTime: at} }
	local := map[string]File{"only-local": f("l", old), "same": f("s", old), "newer-here": f("here", now), "older-here": f("here", old)}
	stored := map[string]File{"only-stored": f("s", old), "same": f("s", now), "newer-here": f("there", old), "older-here": f("there", now)}

	write, next, changed := merge(local, stored, false)
	if !changed {
		t.Error("merge: want a changed record")
	}
	for name, want := range map[string]string{"only-stored": "s", "older-here": "there"} {
		if string(write[name].Content) != want {
			t.Errorf("write[%s] = %q, want %q", name, write[name].Content, want)
		}
	}
	if len(write) != 2 {
		t.Errorf("write = %v, want only-stored and older-here", write)
	}
	for name, want := range map[string]string{"only-local": "l", "only-stored": "s", "same": "s", "newer-here": "here", "older-here": "there"} {
		if string(next[name].Content) != want {
			t.Errorf("next[%s] = %q, want %q", name, next[name].Content, want)
		}
	}

	// A server that lost the race to store first takes the stored copies.
	write, next, _ = merge(local, stored, true)
	if string(write["newer-here"].Content) != "there" || string(next["newer-here"].Content) != "there" {
		t.Errorf("PreferStored: write %q, next %q; want the stored copy", write["newer-here"].Content, next["newer-here"].Content)
	}
}

// memStore is a Store in memory with etcd's revision semantics.
type memStore struct {
	data []byte
	rev  int64
	// before runs at the next Put, once: another server's write.
	before func(*memStore)
}

func (m *memStore) Get(context.Context) ([]byte, int64, error) { return m.data, m.rev, nil }

func (m *memStore) Put(_ context.Context, data []byte, rev int64) (bool, error) {
	if b := m.before; b != nil {
		m.before = nil
		b(m)
	}
	if rev != m.rev {
		return false, nil
	}
	m.data, m.rev = data, m.rev+1
	return true, nil
}

var names = []string{"tls/server-ca.crt", "tls/server-ca.key", "token"}

func writeFiles(t *testing.T, dir string, content map[string]string) {
	t.Helper()
	for name, c := range content {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestSyncSecondServer(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	first, second := t.TempDir(), t.TempDir()

	// The first server finds no record and stores its files.
	writeFiles(t, first, map[string]string{"tls/server-ca.crt": "ca", "tls/server-ca.key": "key", "token": "tok", "tls/serving.crt": "own"})
	r, err := Sync{Dir: first, Names: names, Secret: secretA, Store: store}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Found || len(r.Stored) != 3 || len(r.Written) != 0 {
		t.Errorf("first server: %+v, want the three shared files stored", r)
	}

	// Without the token, or with another, the second server is refused.
	if _, err := (Sync{Dir: second, Names: names, Store: store}).Run(ctx); !errors.Is(err, ErrNoToken) {
		t.Errorf("no token: %v, want ErrNoToken", err)
	}
	if _, err := (Sync{Dir: second, Names: names, Secret: secretB, Store: store}).Run(ctx); !errors.Is(err, ErrWrongToken) {
		t.Errorf("wrong token: %v, want ErrWrongToken", err)
	}
	if _, err := os.Stat(filepath.Join(second, "token")); err == nil {
		t.Error("a refused server wrote the token")
	}

	// With it, it takes the cluster's files, and only those.
	r, err = Sync{Dir: second, Names: names, Secret: secretA, Store: store}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Found || len(r.Written) != 3 || len(r.Stored) != 0 {
		t.Errorf("second server: %+v, want the three files written", r)
	}
	if got := read(t, second, "tls/server-ca.key"); got != "key" {
		t.Errorf("second server's CA key = %q", got)
	}
	if _, err := os.Stat(filepath.Join(second, "tls/serving.crt")); err == nil {
		t.Error("a server's own certificate was shared")
	}
	// Nothing changes on a second run.
	if r, err := (Sync{Dir: second, Names: names, Secret: secretA, Store: store}).Run(ctx); err != nil || len(r.Written)+len(r.Stored) != 0 {
		t.Errorf("second run: %+v, %v; want nothing to do", r, err)
	}
}

// Two new servers make their own CAs at once: the one that stores second
// takes the first one's.
func TestSyncRace(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	mine := t.TempDir()
	writeFiles(t, mine, map[string]string{"tls/server-ca.crt": "mine", "tls/server-ca.key": "mine", "token": "tok"})
	theirs, err := Seal(secretA, map[string]File{"tls/server-ca.crt": {Content: []byte("theirs")}, "tls/server-ca.key": {Content: []byte("theirs")}, "token": {Content: []byte("tok")}})
	if err != nil {
		t.Fatal(err)
	}
	store.before = func(m *memStore) { m.data, m.rev = theirs, 1 }
	r, err := Sync{Dir: mine, Names: names, Secret: secretA, Store: store, PreferStored: true}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, mine, "tls/server-ca.key"); got != "theirs" {
		t.Errorf("after the race the CA key is %q, want the stored one; %+v", got, r)
	}
	if store.rev != 1 {
		t.Errorf("the record was rewritten (revision %d)", store.rev)
	}
}
