package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kubox-io/kubox/pkg/pki"
)

// etcdServer is a one-member etcd as kubeadm runs it: client TLS with client
// certificates, on the node's loopback (inside the namespace).
type etcdServer struct {
	bin     string
	dir     string
	logDir  string
	p       *proc
	CA      string
	Cert    string // client certificate for the apiserver or kine
	Key     string
	URL     string
	dataDir string
}

// newEtcd uses bin, the etcd server the bench builds from the go.etcd.io
// module kubox's go.mod pins (Debian's 3.4 is too old for Kubernetes 1.37's
// watch cache).
func newEtcd(bin, dir, logDir string) (*etcdServer, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("etcd not found at %s: run `make bench`, which builds it", bin)
	}
	return &etcdServer{bin: bin, dir: dir, logDir: logDir, URL: "https://127.0.0.1:2379",
		dataDir: filepath.Join(dir, "data")}, nil
}

// certs creates the etcd CA, the serving certificate and a client
// certificate, once.
func (e *etcdServer) certs() error {
	pkiDir := filepath.Join(e.dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	p := func(n string) string { return filepath.Join(pkiDir, n) }
	ca, err := pki.LoadOrCreateCA(p("ca.crt"), p("ca.key"), "etcd-ca", 0, now)
	if err != nil {
		return err
	}
	serving := pki.CertSpec{CommonName: "etcd", Server: true, Client: true,
		SANs: pki.SANs{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}}
	if _, err := ca.EnsureCert(p("server.crt"), p("server.key"), serving, 0, now); err != nil {
		return err
	}
	client := pki.CertSpec{CommonName: "kube-apiserver-etcd-client", Client: true}
	if _, err := ca.EnsureCert(p("client.crt"), p("client.key"), client, 0, now); err != nil {
		return err
	}
	e.CA, e.Cert, e.Key = p("ca.crt"), p("client.crt"), p("client.key")
	return nil
}

func (e *etcdServer) start(cg *cgroup) error {
	if e.p != nil && !e.p.exited() {
		return nil
	}
	if err := e.certs(); err != nil {
		return err
	}
	pkiDir := filepath.Join(e.dir, "pki")
	p, err := startProc(cg, e.logDir, "etcd", nil, e.bin,
		"--name", "bench",
		"--data-dir", e.dataDir,
		"--listen-client-urls", e.URL,
		"--advertise-client-urls", e.URL,
		"--listen-peer-urls", "http://127.0.0.1:2380",
		"--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "bench=http://127.0.0.1:2380",
		"--cert-file", filepath.Join(pkiDir, "server.crt"),
		"--key-file", filepath.Join(pkiDir, "server.key"),
		"--trusted-ca-file", e.CA,
		"--client-cert-auth=true",
		"--snapshot-count", "10000",
		"--listen-metrics-urls", "http://127.0.0.1:2381",
	)
	if err != nil {
		return err
	}
	e.p = p
	return nil
}

func (e *etcdServer) stop() {
	if e.p != nil {
		e.p.stop(20 * time.Second)
		e.p = nil
	}
}

// wipe removes etcd's data (its certificates go too: a first start makes
// them anew, as kubeadm would).
func (e *etcdServer) wipe() error {
	e.stop()
	return os.RemoveAll(e.dir)
}

// size is what etcd's data directory holds.
func (e *etcdServer) size() int64 { return dirSize(e.dataDir) }
