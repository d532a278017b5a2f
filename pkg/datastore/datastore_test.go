package datastore

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

func testPaths(t *testing.T) paths.Paths {
	t.Helper()
	dir := t.TempDir()
	return paths.New(filepath.Join(dir, "data"), filepath.Join(dir, "etc"), filepath.Join(dir, "run"))
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
}

func TestCheckSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	header := "SQLite format 3\x00"
	for _, tc := range []struct {
		name    string
		content *string // nil: no file
		ok      bool
	}{
		{"missing", nil, true},
		{"empty", ptr(""), true},
		{"sqlite", ptr(header + strings.Repeat("\x00", 84)), true},
		{"text", ptr("apiVersion: v1\nkind: Config\n"), false},
		{"shorter than the header", ptr("SQLite"), false},
		{"header without its NUL", ptr("SQLite format 3 and more"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".db")
			if tc.content != nil {
				if err := os.WriteFile(file, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := checkSQLiteFile(file)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("accepted a file that is not an SQLite database")
				}
				oneLine(t, err)
				for _, want := range []string{file, "kubox left it untouched"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
			}
			// The check only reads: a missing file stays missing, others
			// keep their bytes.
			data, rerr := os.ReadFile(file)
			switch {
			case tc.content == nil && !os.IsNotExist(rerr):
				t.Errorf("the check created %s", file)
			case tc.content != nil && string(data) != *tc.content:
				t.Errorf("the check changed %s", file)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{in: "postgres://kubox:s3cret@db.example:5432/kubox?sslmode=disable", want: "postgres://kubox:***@db.example:5432/kubox?sslmode=disable"},
		{in: "postgresql://kubox:p%40ss@db/kubox", want: "postgresql://kubox:***@db/kubox"},
		{in: "postgres://kubox@db/kubox", want: "postgres://kubox@db/kubox"},
		{in: "mysql://root:s3cret@tcp(db)/kubox", want: "mysql://root:***@tcp(db)/kubox"},
		{
			in: "mysql://root:s3cret@tcp(db:3306)/kubox", want: "mysql://root:***@tcp(db:3306)/kubox",
		},
		{in: "https://10.0.0.1:2379,https://10.0.0.2:2379", want: "https://10.0.0.1:2379,https://10.0.0.2:2379"},
		{in: "https://root:pw1@10.0.0.1:2379,https://10.0.0.2:2379,https://root:pw3@10.0.0.3:2379", want: "https://root:***@10.0.0.1:2379,https://10.0.0.2:2379,https://root:***@10.0.0.3:2379"},
		{in: "", want: ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := redact(tc.in); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	p := paths.New("/var/lib/kubox", "/etc/kubox", "/run/kubox")
	for _, tc := range []struct {
		name     string
		endpoint string
		err      string
		want     string
	}{
		{
			name: "sqlite readonly", err: "attempt to write a readonly database",
			want: "cannot open the database in /var/lib/kubox/server/db: attempt to write a readonly database; check that --data-dir is writable",
		},
		{
			name: "sqlite permission", err: "open /var/lib/kubox/server/db/state.db: permission denied",
			want: "cannot open the database in /var/lib/kubox/server/db: open /var/lib/kubox/server/db/state.db: permission denied; check that --data-dir is writable",
		},
		{
			name: "sqlite unable to open", err: "unable to open database file",
			want: "cannot open the database in /var/lib/kubox/server/db: unable to open database file; check that --data-dir is writable",
		},
		{
			name: "sqlite corrupt", err: "file is not a database",
			want: "the SQLite database /var/lib/kubox/server/db/state.db is corrupt (file is not a database): restore a backup or move it aside to start a new cluster; kubox left it untouched",
		},
		{
			name: "sqlite other", err: "disk I/O error",
			want: "cannot start the sqlite datastore: disk I/O error; check --datastore-endpoint",
		},
		{
			name: "postgres refused", endpoint: "postgres://kubox@127.0.0.1:5432/kubox", err: "dial tcp 127.0.0.1:5432: connect: connection refused",
			want: "cannot start the postgres datastore at postgres://kubox@127.0.0.1:5432/kubox: dial tcp 127.0.0.1:5432: connect: connection refused; check --datastore-endpoint",
		},
		{
			// Only SQLite has a file that can be corrupt.
			name: "mysql not a database", endpoint: "mysql://root@tcp(db)/kubox", err: "Error 1049: 'kubox' is not a database",
			want: "cannot start the mysql datastore at mysql://root@tcp(db)/kubox: Error 1049: 'kubox' is not a database; check --datastore-endpoint",
		},
		{
			name: "postgres permission", endpoint: "postgres://kubox@db/kubox", err: "pq: permission denied for table kine",
			want: "cannot start the postgres datastore at postgres://kubox@db/kubox: pq: permission denied for table kine; check --datastore-endpoint",
		},
		{
			name: "password masked", endpoint: "postgres://kubox:s3cret@db/kubox", err: "login as kubox with s3cret failed",
			want: "cannot start the postgres datastore at postgres://kubox:***@db/kubox: login as kubox with *** failed; check --datastore-endpoint",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(config.Datastore{Endpoint: tc.endpoint}, p)
			got := d.explain(errors.New(tc.err))
			if got.Error() != tc.want {
				t.Errorf("explain(%q)\n got %q\nwant %q", tc.err, got, tc.want)
			}
		})
	}
}

// start starts a datastore on p and stops it when the test ends.
func start(t *testing.T, p paths.Paths) *Datastore {
	t.Helper()
	d := New(config.Datastore{}, p)
	d.ReachTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.Start(ctx, func(err error) { t.Errorf("datastore failed: %v", err) }); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stop(t, d) })
	return d
}

func stop(t *testing.T, d *Datastore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func etcdClient(t *testing.T, d *Datastore) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: d.Endpoint().Servers, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// The API server's view: kine on a unix socket inside the data dir,
// speaking etcd, with state that outlives the process.
func TestSQLiteKine(t *testing.T) {
	p := testPaths(t)
	d := start(t, p)

	ep := d.Endpoint()
	if want := "unix://" + p.KineSocket; len(ep.Servers) != 1 || ep.Servers[0] != want {
		t.Fatalf("endpoint servers = %v, want [%s]", ep.Servers, want)
	}
	if ep.LeaderElect || ep.CAFile != "" || ep.CertFile != "" || ep.KeyFile != "" {
		t.Errorf("endpoint = %+v, want no leader election and no TLS files for SQLite", ep)
	}
	// Anyone who can open the socket has the whole cluster state.
	if fi, err := os.Stat(p.KineSocket); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want -rw-------", fi.Mode().Perm())
	}
	if fi, err := os.Stat(p.DBDir); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("database dir mode = %v, want drwx------", fi.Mode().Perm())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli := etcdClient(t, d)
	if _, err := cli.Put(ctx, "/registry/kubox-test", "persisted"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/registry/kubox-test")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "persisted" {
		t.Fatalf("get = %v, want one key with value persisted", resp.Kvs)
	}
	// kine's graceful stop waits for open connections.
	cli.Close()
	stop(t, d)
	if _, err := os.Stat(p.SQLiteFile); err != nil {
		t.Fatalf("no database file after stop: %v", err)
	}

	d2 := start(t, p)
	cli2 := etcdClient(t, d2)
	defer cli2.Close()
	resp, err = cli2.Get(ctx, "/registry/kubox-test")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "persisted" {
		t.Fatalf("get after restart = %v, want the key written before", resp.Kvs)
	}
}

// Start refuses a database file that is not SQLite before kine opens it,
// and leaves the file as it was.
func TestSQLiteKineRefusesForeignFile(t *testing.T) {
	p := testPaths(t)
	if err := os.MkdirAll(p.DBDir, 0o700); err != nil {
		t.Fatal(err)
	}
	content := []byte("not a database, but someone's notes\n")
	if err := os.WriteFile(p.SQLiteFile, content, 0o600); err != nil {
		t.Fatal(err)
	}
	d := New(config.Datastore{}, p)
	err := d.Start(context.Background(), func(error) {})
	if err == nil {
		stop(t, d)
		t.Fatal("Start accepted a file that is not an SQLite database")
	}
	oneLine(t, err)
	for _, want := range []string{p.SQLiteFile, "kubox left it untouched"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if data, _ := os.ReadFile(p.SQLiteFile); string(data) != string(content) {
		t.Errorf("the file changed: %q", data)
	}
	entries, _ := os.ReadDir(p.DBDir)
	if len(entries) != 1 {
		t.Errorf("database dir holds %d entries, want the file alone (no -wal, -shm)", len(entries))
	}
	if _, err := os.Stat(p.KineSocket); !os.IsNotExist(err) {
		t.Errorf("kine socket exists after a refused start (err %v)", err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestEtcdUnreachable(t *testing.T) {
	addr := closedPort(t)
	for _, tc := range []struct {
		name, endpoint, shown string
	}{
		{"plain", "http://" + addr, "http://" + addr},
		{"list", "http://" + addr + ",http://" + addr, "http://" + addr + ",http://" + addr},
		{"credentials", "http://kubox:s3cret@" + addr, "http://kubox:***@" + addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(config.Datastore{Endpoint: tc.endpoint}, testPaths(t))
			d.ReachTimeout = 500 * time.Millisecond
			begin := time.Now()
			err := d.Start(context.Background(), func(error) {})
			took := time.Since(begin)
			if err == nil {
				t.Fatal("Start succeeded with nothing listening")
			}
			t.Log(err)
			oneLine(t, err)
			// The client's DialTimeout and the health check's timeout
			// each take at most ReachTimeout.
			if took > 3*time.Second {
				t.Errorf("Start took %s with ReachTimeout %s", took, d.ReachTimeout)
			}
			msg := err.Error()
			for _, want := range []string{"--datastore-endpoint", tc.shown} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error %q shows the password", msg)
			}
			if got := d.Endpoint(); got.Servers != nil {
				t.Errorf("endpoint set after a failed start: %+v", got)
			}
		})
	}
}

// Stop before a successful Start has nothing to stop.
func TestStopWithoutStart(t *testing.T) {
	d := New(config.Datastore{}, testPaths(t))
	if err := d.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
