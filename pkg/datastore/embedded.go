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

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubox-io/kubox/pkg/config"
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
	var promote func(context.Context) error
	if len(d.JoinPeers) > 0 && !config.HasEmbeddedEtcd(d.paths) {
		cli, err := d.peersClient(files)
		if err != nil {
			return err
		}
		defer cli.Close()
		initial, id, err := addLearner(ctx, cli, m.Name, m.PeerURL())
		if err != nil {
			return err
		}
		cfg.InitialCluster, cfg.ClusterState = initial, embed.ClusterStateFlagExisting
		promote = func(ctx context.Context) error { return promoteLearner(ctx, cli, id) }
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return explainEtcd(err, m.ClientPort, m.PeerPort)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return explainEtcd(err, m.ClientPort, m.PeerPort)
	case <-ctx.Done():
		e.Close()
		return ctx.Err()
	}
	if promote != nil {
		if err := promote(ctx); err != nil {
			e.Close()
			return err
		}
	}
	go func() {
		if err, ok := <-e.Err(); ok && err != nil {
			fail(fmt.Errorf("embedded etcd: %w", err))
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

// explainEtcd turns the member's start errors a user can fix into one line
// that says how.
func explainEtcd(err error, clientPort, peerPort int) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("embedded etcd cannot listen on its ports %d and %d: %v; stop what uses them (another etcd?)", clientPort, peerPort, err)
	}
	return fmt.Errorf("embedded etcd: %w", err)
}

// peersClient reaches the members a new member joins, as the etcd client
// this server's certificates make it.
func (d *Datastore) peersClient(files pki.Etcd) (*clientv3.Client, error) {
	tlsCfg, err := (transport.TLSInfo{CertFile: files.ClientCert, KeyFile: files.ClientKey, TrustedCAFile: files.CA}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot load the etcd client certificate: %w", err)
	}
	return clientv3.New(clientv3.Config{Endpoints: d.JoinPeers, DialTimeout: d.ReachTimeout, TLS: tlsCfg, Logger: nopZap()})
}

// addLearner adds the member at peerURL to the cluster as a learner (it
// votes only once it has caught up) and returns the initial-cluster value
// it starts with and its ID. A learner left by an earlier attempt that
// never started is removed first.
func addLearner(ctx context.Context, cli *clientv3.Client, name, peerURL string) (string, uint64, error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("cannot reach the cluster's etcd at %s: %w", strings.Join(cli.Endpoints(), ","), err)
	}
	for _, m := range list.Members {
		if slices.Contains(m.PeerURLs, peerURL) {
			if m.Name != "" {
				return "", 0, fmt.Errorf("the cluster has a member %s at %s already: remove it (kubectl delete node) or use another address", m.Name, peerURL)
			}
			if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
				return "", 0, fmt.Errorf("cannot remove the member an earlier join left at %s: %w", peerURL, err)
			}
		}
	}
	added, err := cli.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return "", 0, fmt.Errorf("cannot add this server to the cluster's etcd: %w", err)
	}
	var initial []string
	for _, m := range added.Members {
		n := m.Name
		if m.ID == added.Member.ID {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	return strings.Join(initial, ","), added.Member.ID, nil
}

// promoteLearner makes the learner a voting member once it has caught up
// with the leader, which etcd checks; until then it retries.
func promoteLearner(ctx context.Context, cli *clientv3.Client, id uint64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := cli.MemberPromote(ctx, id)
		if err == nil {
			return nil
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
