package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	// ForceNewCluster (--cluster-reset without a snapshot) restarts the
	// member as a one-member cluster from its own data.
	ForceNewCluster bool
	// Join is the server a new member joins (--server), nil for the first
	// member or one that joined before.
	Join *ServerJoin
	// MigrateFrom is the SQLite database (kine's) whose state the member
	// takes on its first start: --cluster-init on a one-server cluster.
	MigrateFrom string
}

// ServerJoin is how a new server joins a cluster: the URL of one of its
// servers and the server token.
type ServerJoin struct {
	URL   string
	Token string
}

// serverJoin checks --server and the token a joining server needs.
func serverJoin(o ServerOptions) (*ServerJoin, error) {
	u, err := url.Parse(o.ServerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid --server %q: give it as https://<server address>:6443", o.ServerURL)
	}
	token, err := o.token()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("no token to join with: give --token (or --token-file) with the server token, <data-dir>/server/token on a server of the cluster")
	}
	return &ServerJoin{URL: o.ServerURL, Token: token}, nil
}

// token is --token, or the content of --token-file; "" for neither.
func (o ServerOptions) token() (string, error) {
	if o.Token != "" || o.TokenFile == "" {
		return strings.TrimSpace(o.Token), nil
	}
	data, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return "", fmt.Errorf("cannot read --token-file: %v", err)
	}
	return strings.TrimSpace(string(data)), nil
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
	has, joining := HasEmbeddedEtcd(p), o.ServerURL != ""
	flag := "--cluster-init"
	if joining {
		flag = "--server"
	}
	switch {
	case !o.ClusterInit && !joining && !has:
		return nil, nil
	case o.ClusterInit && joining:
		return nil, errors.New("--cluster-init starts a new cluster and --server joins one: give only one of them")
	case o.DatastoreEndpoint != "":
		if o.ClusterInit || joining {
			return nil, fmt.Errorf("%s runs an embedded etcd: drop --datastore-endpoint, or drop %s to use that datastore", flag, flag)
		}
		return nil, fmt.Errorf("--data-dir %s holds an embedded etcd member: start without --datastore-endpoint, or use another --data-dir", p.DataDir)
	case o.ClusterInit && has:
		if from, err := os.ReadFile(p.EtcdJoined); err == nil {
			return nil, fmt.Errorf("--cluster-init on a server that joined the cluster of %s: it is a member of that cluster already; drop --cluster-init (a restart needs neither --cluster-init nor --server)", strings.TrimSpace(string(from)))
		}
	}
	// A server whose state is in SQLite moves it into its new member; one
	// that joins another cluster would lose it.
	_, sqliteErr := os.Stat(p.SQLiteFile)
	if sqliteErr == nil && joining && !has {
		return nil, fmt.Errorf("--server on a server whose state is in SQLite (%s): joining would drop it; start on a new --data-dir, or take that state into a cluster of its own with --cluster-init", p.SQLiteFile)
	}
	host, err := NodeName("")
	if err != nil {
		return nil, err
	}
	// Servers of one cluster may share a host name (containers, network
	// namespaces): the member's name carries its address too.
	sum := sha256.Sum256([]byte(advertise.String()))
	e := &EmbeddedEtcd{Name: host + "-" + hex.EncodeToString(sum[:4]), DataDir: p.EtcdDir, TLSDir: p.EtcdTLSDir, AdvertiseIP: advertise,
		ClientPort: EtcdClientPort, PeerPort: EtcdPeerPort}
	if sqliteErr == nil {
		e.MigrateFrom = p.SQLiteFile
	}
	if joining && !has {
		if e.Join, err = serverJoin(o); err != nil {
			return nil, err
		}
	}
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
