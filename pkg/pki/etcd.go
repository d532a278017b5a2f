package pki

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Etcd is the set of files of an embedded etcd member, all under Dir. Its
// CA is its own: only the member's peers and clients it issued reach etcd,
// whatever the cluster's other CAs sign.
type Etcd struct {
	Dir string

	CA, CAKey             string
	ServerCert, ServerKey string // the client port's serving certificate
	PeerCert, PeerKey     string // between members: serving and client
	ClientCert, ClientKey string // the API server's and kubox's own client
}

// EtcdFiles names the files of an embedded etcd member kept in dir.
func EtcdFiles(dir string) Etcd {
	p := func(name string) string { return filepath.Join(dir, name) }
	return Etcd{Dir: dir,
		CA: p("etcd-ca.crt"), CAKey: p("etcd-ca.key"),
		ServerCert: p("etcd-server.crt"), ServerKey: p("etcd-server.key"),
		PeerCert: p("etcd-peer.crt"), PeerKey: p("etcd-peer.key"),
		ClientCert: p("etcd-client.crt"), ClientKey: p("etcd-client.key"),
	}
}

// EnsureEtcd creates or reuses the etcd CA and the member's certificates in
// dir, following the rules of EnsureControlPlane. sans are the member's
// names and addresses (loopback is added for its local clients); leaves
// are valid for validity.
func EnsureEtcd(dir string, sans SANs, validity, renewBefore time.Duration, now time.Time) (Etcd, []string, error) {
	e := EtcdFiles(dir)
	var notes []string
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return e, notes, fmt.Errorf("creating certificate directory %s: %w", dir, err)
	}
	ca, action, err := loadOrCreateCA(e.CA, e.CAKey, fmt.Sprintf("kubox-etcd-ca@%d", now.Unix()), renewBefore, now)
	if err != nil {
		return e, notes, err
	}
	switch action {
	case caCreated:
		notes = append(notes, "created etcd CA")
	case caRenewed:
		notes = append(notes, fmt.Sprintf("renewed etcd CA (expires within %s)", within(renewBefore)))
	}
	local := SANs{DNSNames: append([]string{"localhost"}, sans.DNSNames...), IPs: append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, sans.IPs...)}
	for _, l := range []struct {
		name, cert, key string
		spec            CertSpec
	}{
		{"etcd serving", e.ServerCert, e.ServerKey, CertSpec{CommonName: "etcd-server", SANs: local, Server: true, Client: true}},
		{"etcd peer", e.PeerCert, e.PeerKey, CertSpec{CommonName: "etcd-peer", SANs: local, Server: true, Client: true}},
		{"etcd client", e.ClientCert, e.ClientKey, CertSpec{CommonName: "etcd-client", Client: true}},
	} {
		l.spec.Validity = validity
		a, err := ca.ensureCert(l.cert, l.key, l.spec, renewBefore, now)
		if err != nil {
			return e, notes, err
		}
		if a.verb != "" {
			notes = append(notes, a.verb+" "+l.name+" certificate")
		}
	}
	return e, notes, nil
}

// LoadEtcdCA loads the etcd CA of dir, for renewing what it signed.
func LoadEtcdCA(dir string) (*CA, error) {
	e := EtcdFiles(dir)
	return loadCA(e.CA, e.CAKey)
}
