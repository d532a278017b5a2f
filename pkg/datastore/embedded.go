package datastore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubox-io/kubox/pkg/atomicfile"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/etcdmember"
	"github.com/kubox-io/kubox/pkg/pki"
)

// startEmbedded runs the data dir's etcd member in this process: on its
// first start a new one-member cluster, after that the member its data
// dir holds. Start returns once the member serves.
func (d *Datastore) startEmbedded(ctx context.Context, fail func(error)) error {
	m := d.cfg.Etcd
	files := pki.EtcdFiles(m.TLSDir)
	u := func(raw string) url.URL {
		parsed, _ := url.Parse(raw)
		return *parsed
	}
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.DataDir
	cfg.ListenClientUrls = []url.URL{u(m.ClientURL()), u(m.AdvertiseURL())}
	cfg.AdvertiseClientUrls = []url.URL{u(m.AdvertiseURL())}
	cfg.ListenPeerUrls = []url.URL{u(m.PeerURL())}
	cfg.AdvertisePeerUrls = []url.URL{u(m.PeerURL())}
	cfg.InitialCluster = m.Name + "=" + m.PeerURL()
	cfg.InitialClusterToken = "kubox"
	cfg.ForceNewCluster = m.ForceNewCluster
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: files.ServerCert, KeyFile: files.ServerKey, TrustedCAFile: files.CA, ClientCertAuth: true}
	cfg.PeerTLSInfo = transport.TLSInfo{CertFile: files.PeerCert, KeyFile: files.PeerKey, TrustedCAFile: files.CA, ClientCertAuth: true}
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(nopZap())
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w; check that --data-dir is writable", m.DataDir, err)
	}
	joining := len(d.JoinPeers) > 0 && !config.HasEmbeddedEtcd(d.paths)
	if joining {
		cli, err := etcdmember.Client(files, d.JoinPeers, d.ReachTimeout)
		if err != nil {
			return err
		}
		initial, err := addLearner(ctx, cli, m.Name, m.PeerURL(), d.logf)
		cli.Close()
		if err != nil {
			return err
		}
		cfg.InitialCluster, cfg.ClusterState = initial, embed.ClusterStateFlagExisting
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return explainEtcd(err, m.ClientPort, m.PeerPort)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-e.Server.StopNotify():
		err := d.stoppedByCluster(e)
		e.Close()
		return err
	case err := <-e.Err():
		err = d.failure(e, err)
		e.Close()
		return err
	case <-ctx.Done():
		e.Close()
		return ctx.Err()
	}
	// A learner (just joined, or stopped before it was promoted) becomes a
	// voting member once it has caught up.
	if e.Server.IsLearner() {
		if err := d.promote(ctx, e, files); err != nil {
			e.Close()
			return err
		}
	}
	if joining {
		from := d.paths.DataDir
		if m.Join != nil {
			from = m.Join.URL
		}
		if err := atomicfile.Write(d.paths.EtcdJoined, []byte(from+"\n"), 0o600); err != nil {
			e.Close()
			return err
		}
	}
	if m.MigrateFrom != "" {
		if err := d.migrate(ctx, files); err != nil {
			e.Close()
			return err
		}
	}
	go func() {
		select {
		case err, ok := <-e.Err():
			if ok && err != nil {
				fail(d.failure(e, err))
			}
		case <-e.Server.StopNotify():
			d.mu.Lock()
			stopping := d.stopping
			d.mu.Unlock()
			if !stopping {
				fail(d.stoppedByCluster(e))
			}
		}
	}()
	d.mu.Lock()
	d.embedded = e
	// Other servers may join the member at any time: their controllers
	// and this server's take turns through leases.
	d.endpoint = Endpoint{Servers: []string{d.cfg.Endpoint}, CAFile: d.cfg.CAFile, CertFile: d.cfg.CertFile, KeyFile: d.cfg.KeyFile, LeaderElect: true}
	d.mu.Unlock()
	return nil
}

// migrate moves the SQLite state of a server started with --cluster-init
// into its new member, before the API server starts.
func (d *Datastore) migrate(ctx context.Context, files pki.Etcd) error {
	m := d.cfg.Etcd
	cli, err := etcdmember.Client(files, []string{m.ClientURL()}, d.ReachTimeout)
	if err != nil {
		return err
	}
	defer cli.Close()
	d.logf("moving the cluster's state from SQLite (%s) into etcd", m.MigrateFrom)
	keys, keptAs, err := migrateSQLite(ctx, m.MigrateFrom, cli, time.Now())
	if err != nil {
		return fmt.Errorf("cannot move the SQLite state into etcd: %w; the SQLite file is untouched; fix that and start again, the move is repeated", err)
	}
	d.logf("moved %d keys from SQLite into etcd; the SQLite database is kept as %s", keys, keptAs)
	return nil
}

// failure explains an error the member's servers reported: one that comes
// with the member stopping by itself is explained by why it stopped.
func (d *Datastore) failure(e *embed.Etcd, err error) error {
	select {
	case <-e.Server.StopNotify():
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if !stopping {
			return d.stoppedByCluster(e)
		}
	case <-time.After(2 * time.Second):
	}
	return explainEtcd(err, d.cfg.Etcd.ClientPort, d.cfg.Etcd.PeerPort)
}

// stoppedByCluster explains a member that stopped while the server did not
// ask it to: mostly, its peers removed it (its node was deleted), which it
// may learn only from them.
func (d *Datastore) stoppedByCluster(e *embed.Etcd) error {
	self := e.Server.MemberID()
	removed := e.Server.IsIDRemoved(uint64(self))
	if !removed {
		var peers []string
		for _, m := range e.Server.Cluster().Members() {
			if m.ID != self {
				peers = append(peers, m.ClientURLs...)
			}
		}
		if cli, err := etcdmember.Client(pki.EtcdFiles(d.cfg.Etcd.TLSDir), peers, 5*time.Second); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if list, err := cli.MemberList(ctx); err == nil {
				removed = !slices.ContainsFunc(list.Members, func(m *etcdserverpb.Member) bool { return types.ID(m.ID) == self })
			}
			cancel()
			cli.Close()
		}
	}
	if removed {
		return fmt.Errorf("this server's etcd member was removed from the cluster (its node was deleted): to join again, move %s aside and start with --server <a server of the cluster> --token <its server token>", d.cfg.Etcd.DataDir)
	}
	return errors.New("the embedded etcd member stopped by itself; check the disk and the other servers")
}

// explainEtcd turns the member's start errors a user can fix into one line
// that says how.
func explainEtcd(err error, clientPort, peerPort int) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("embedded etcd cannot listen on its ports %d and %d: %v; stop what uses them (another etcd?)", clientPort, peerPort, err)
	}
	return fmt.Errorf("embedded etcd: %w", err)
}

// addLearner adds the member at peerURL to the cluster as a learner (it
// votes only once it has caught up) and returns the initial-cluster value
// it starts with. A member at peerURL that never started (an earlier
// attempt's) is taken as this one. etcd takes one new member at a time:
// servers started together join in turn.
func addLearner(ctx context.Context, cli *clientv3.Client, name, peerURL string, logf func(string, ...any)) (string, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := cli.MemberList(lctx)
		cancel()
		if err == nil {
			for _, m := range list.Members {
				if !slices.Contains(m.PeerURLs, peerURL) {
					continue
				}
				if m.Name != "" {
					return "", fmt.Errorf("the cluster has a member %s at %s already: remove it (kubectl delete node) or use another address", m.Name, peerURL)
				}
				return initialCluster(list.Members, m.ID, name), nil
			}
			actx, cancel := context.WithTimeout(ctx, 15*time.Second)
			var added *clientv3.MemberAddResponse
			added, err = cli.MemberAddAsLearner(actx, []string{peerURL})
			cancel()
			if err == nil {
				return initialCluster(added.Members, added.Member.ID, name), nil
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("cannot add this server to the cluster's etcd at %s: %w", strings.Join(cli.Endpoints(), ","), err)
		}
		logf("waiting to join the cluster's etcd (%v): another server may be joining; retrying", err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// initialCluster is etcd's initial-cluster value for members, the one with
// id (not started yet, so nameless) called name.
func initialCluster(members []*etcdserverpb.Member, id uint64, name string) string {
	var initial []string
	for _, m := range members {
		n := m.Name
		if m.ID == id {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	return strings.Join(initial, ",")
}

// promote makes this learner a voting member once it has caught up with
// the leader, which etcd checks; until then it retries. It asks the other
// members, since a learner serves no cluster changes.
func (d *Datastore) promote(ctx context.Context, e *embed.Etcd, files pki.Etcd) error {
	self := e.Server.MemberID()
	var peers []string
	for _, m := range e.Server.Cluster().Members() {
		if m.ID != self {
			peers = append(peers, m.ClientURLs...)
		}
	}
	cli, err := etcdmember.Client(files, peers, d.ReachTimeout)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cli.MemberPromote(pctx, uint64(self))
		cancel()
		if err == nil {
			d.logf("this server's etcd member %s votes now", e.Config().Name)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("this server's etcd member did not catch up with the cluster within 2 minutes: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
