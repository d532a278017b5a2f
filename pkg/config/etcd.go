package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kubox-io/kubox/pkg/config/paths"
)

// Ports of an embedded etcd member, as etcd's own defaults.
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
)

// EmbeddedEtcd is an etcd member run inside the server (--cluster-init).
// Its client and peer ports listen on the advertise address (and the
// client port on loopback) with mutual TLS only, from its own CA.
type EmbeddedEtcd struct {
	Name        string // the member's name
	DataDir     string
	TLSDir      string
	AdvertiseIP net.IP
	ClientPort  int
	PeerPort    int
}

// ClientURL is where the server's own clients reach the member.
func (e *EmbeddedEtcd) ClientURL() string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(e.ClientPort))
}

// AdvertiseURL is the member's client URL for other machines; PeerURL its
// peer URL.
func (e *EmbeddedEtcd) AdvertiseURL() string {
	return "https://" + net.JoinHostPort(e.AdvertiseIP.String(), strconv.Itoa(e.ClientPort))
}

// PeerURL is where the member's peers reach it.
func (e *EmbeddedEtcd) PeerURL() string {
	return "https://" + net.JoinHostPort(e.AdvertiseIP.String(), strconv.Itoa(e.PeerPort))
}

// HasEmbeddedEtcd says whether the data dir holds an embedded etcd member:
// once --cluster-init made one, the server keeps using it.
func HasEmbeddedEtcd(p paths.Paths) bool {
	_, err := os.Stat(filepath.Join(p.EtcdDir, "member"))
	return err == nil
}

// embeddedEtcd is the datastore of a server that runs etcd itself: with
// --cluster-init, or on a data dir that holds a member already. It is nil
// (and no error) for every other server.
func embeddedEtcd(o ServerOptions, p paths.Paths, advertise net.IP) (*Datastore, error) {
	has := HasEmbeddedEtcd(p)
	switch {
	case !o.ClusterInit && !has:
		return nil, nil
	case o.DatastoreEndpoint != "":
		if o.ClusterInit {
			return nil, errors.New("--cluster-init runs an embedded etcd: drop --datastore-endpoint, or drop --cluster-init to use that datastore")
		}
		return nil, fmt.Errorf("--data-dir %s holds an embedded etcd member: start without --datastore-endpoint, or use another --data-dir", p.DataDir)
	case !has:
		if _, err := os.Stat(p.SQLiteFile); err == nil {
			return nil, fmt.Errorf("--cluster-init on a server whose state is in SQLite (%s): kubox does not move it into etcd; take a snapshot, start on a new --data-dir with --cluster-init, and apply your objects again", p.SQLiteFile)
		}
	}
	name, err := NodeName("")
	if err != nil {
		return nil, err
	}
	e := &EmbeddedEtcd{Name: name, DataDir: p.EtcdDir, TLSDir: p.EtcdTLSDir, AdvertiseIP: advertise,
		ClientPort: EtcdClientPort, PeerPort: EtcdPeerPort}
	tls := p.EtcdTLSDir
	return &Datastore{
		Endpoint: e.ClientURL(),
		CAFile:   filepath.Join(tls, "etcd-ca.crt"),
		CertFile: filepath.Join(tls, "etcd-client.crt"),
		KeyFile:  filepath.Join(tls, "etcd-client.key"),
		Etcd:     e,
	}, nil
}

// ForDataDir is the datastore a command other than the server reaches for
// the data dir of p: the embedded etcd member if the data dir holds one and
// no endpoint was given, else d.
func (d Datastore) ForDataDir(p paths.Paths) Datastore {
	if d.Endpoint != "" || !HasEmbeddedEtcd(p) {
		return d
	}
	e, err := embeddedEtcd(ServerOptions{}, p, net.IPv4(127, 0, 0, 1))
	if err != nil || e == nil {
		return d
	}
	return *e
}
