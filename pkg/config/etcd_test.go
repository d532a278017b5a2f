package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbeddedEtcd: --cluster-init makes the datastore an etcd member in
// the data dir, which later starts keep without the flag; it is refused
// beside an external datastore. Over an SQLite state it takes that state in;
// joining another cluster over one is refused.
func TestEmbeddedEtcd(t *testing.T) {
	o := defaults()
	o.DataDir = t.TempDir()
	o.AdvertiseAddress = "10.0.0.1"
	s, err := o.Server()
	if err != nil || s.Datastore.Etcd != nil || s.Datastore.Kind() != "sqlite" {
		t.Fatalf("without --cluster-init: %+v, %v", s.Datastore, err)
	}
	o.ClusterInit = true
	if s, err = o.Server(); err != nil {
		t.Fatal(err)
	}
	e := s.Datastore.Etcd
	if e == nil || s.Datastore.Kind() != "etcd" || s.Datastore.Endpoint != "https://127.0.0.1:2379" ||
		e.PeerURL() != "https://10.0.0.1:2380" || e.AdvertiseURL() != "https://10.0.0.1:2379" || e.DataDir != filepath.Join(o.DataDir, "server", "db", "etcd") {
		t.Fatalf("--cluster-init: %+v %+v", s.Datastore, e)
	}
	if !strings.HasPrefix(s.Datastore.CertFile, s.Paths.EtcdTLSDir) || s.Datastore.ForDataDir(s.Paths).Etcd == nil {
		t.Errorf("client files %+v", s.Datastore)
	}

	// A member in the data dir is kept without the flag.
	if err := os.MkdirAll(filepath.Join(s.Paths.EtcdDir, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	o.ClusterInit = false
	if s, err = o.Server(); err != nil || s.Datastore.Etcd == nil {
		t.Fatalf("restart on a member's data dir: %+v, %v", s.Datastore, err)
	}
	if ds := (Datastore{}).ForDataDir(s.Paths); ds.Etcd == nil || ds.Kind() != "etcd" {
		t.Errorf("commands on the data dir reach %+v", ds)
	}
	o.DatastoreEndpoint = "https://10.0.0.9:2379"
	if _, err := o.Server(); err == nil || !strings.Contains(err.Error(), "holds an embedded etcd member") {
		t.Errorf("an endpoint over a member's data dir: %v", err)
	}
	o.ClusterInit = true
	if _, err := o.Server(); err == nil || !strings.Contains(err.Error(), "drop --datastore-endpoint") {
		t.Errorf("--cluster-init with an endpoint: %v", err)
	}

	// SQLite state is not moved into etcd.
	o = defaults()
	o.DataDir = t.TempDir()
	o.ClusterInit = true
	sqlite := filepath.Join(o.DataDir, "server", "db", "state.db")
	if err := os.MkdirAll(filepath.Dir(sqlite), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sqlite, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := o.Server(); err != nil || s.Datastore.Etcd == nil || s.Datastore.Etcd.MigrateFrom != sqlite {
		t.Errorf("--cluster-init over SQLite state: want it moved into etcd, got %+v, %v", s, err)
	}
	o.ClusterInit, o.ServerURL, o.Token = false, "https://10.0.0.1:6443", "K10abc::secret"
	if _, err := o.Server(); err == nil || !strings.Contains(err.Error(), "joining would drop it") {
		t.Errorf("--server over SQLite state: %v", err)
	}
}

// TestServerJoinOptions: --server makes a new member that joins with the
// server token; one that joined before needs neither.
func TestServerJoinOptions(t *testing.T) {
	o := defaults()
	o.DataDir = t.TempDir()
	o.ServerURL = "https://10.0.0.1:6443"
	for _, c := range []struct {
		mutate func(*ServerOptions)
		want   string
	}{
		{func(o *ServerOptions) {}, "no token to join with"},
		{func(o *ServerOptions) { o.Token = "t"; o.ClusterInit = true }, "give only one of them"},
		{func(o *ServerOptions) { o.Token = "t"; o.ServerURL = "http://10.0.0.1:6443" }, `invalid --server "http://10.0.0.1:6443"`},
		{func(o *ServerOptions) { o.Token = "t"; o.DatastoreEndpoint = "postgres://db/k" }, "--server runs an embedded etcd"},
		{func(o *ServerOptions) { o.TokenFile = "/nonexistent" }, "cannot read --token-file"},
	} {
		oo := o
		c.mutate(&oo)
		if _, err := oo.Server(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error saying %q", err, c.want)
		}
	}
	o.Token = "K10abc::secret"
	s, err := o.Server()
	if err != nil || s.Datastore.Etcd == nil || s.Datastore.Etcd.Join == nil || s.Datastore.Etcd.Join.Token != "K10abc::secret" {
		t.Fatalf("joining: %+v, %v", s.Datastore.Etcd, err)
	}
	if err := os.MkdirAll(filepath.Join(s.Paths.EtcdDir, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	o.Token = ""
	if s, err = o.Server(); err != nil || s.Datastore.Etcd == nil || s.Datastore.Etcd.Join != nil {
		t.Fatalf("a member that joined before: %+v, %v", s.Datastore.Etcd, err)
	}
	// --cluster-init on a member that joined is refused; on the first
	// member it is what it always was.
	o.ServerURL, o.ClusterInit = "", true
	if _, err := o.Server(); err != nil {
		t.Errorf("--cluster-init on a member that did not join: %v", err)
	}
	if err := os.WriteFile(s.Paths.EtcdJoined, []byte("https://10.0.0.1:6443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Server(); err == nil || !strings.Contains(err.Error(), "joined the cluster of https://10.0.0.1:6443") || !strings.Contains(err.Error(), "drop --cluster-init") {
		t.Errorf("--cluster-init on a member that joined: %v", err)
	}
}

// Without --server, --token (or --token-file) is the server's own token.
func TestServerToken(t *testing.T) {
	o := defaults()
	o.DataDir = t.TempDir()
	o.DatastoreEndpoint = "postgres://kubox:pw@127.0.0.1:5432/kubox"
	o.Token = " abc \n"
	if s, err := o.Server(); err != nil || s.Token != "abc" || s.Datastore.Etcd != nil {
		t.Fatalf("--token: %+v, %v; want Token abc and no embedded etcd", s, err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Token, o.TokenFile = "", file
	if s, err := o.Server(); err != nil || s.Token != "from-file" {
		t.Fatalf("--token-file: %+v, %v; want Token from-file", s, err)
	}
}
