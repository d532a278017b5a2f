package datastore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"syscall"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

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
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: files.ServerCert, KeyFile: files.ServerKey, TrustedCAFile: files.CA, ClientCertAuth: true}
	cfg.PeerTLSInfo = transport.TLSInfo{CertFile: files.PeerCert, KeyFile: files.PeerKey, TrustedCAFile: files.CA, ClientCertAuth: true}
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(nopZap())
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w; check that --data-dir is writable", m.DataDir, err)
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
	go func() {
		if err, ok := <-e.Err(); ok && err != nil {
			fail(fmt.Errorf("embedded etcd: %w", err))
		}
	}()
	d.mu.Lock()
	d.embedded = e
	d.endpoint = Endpoint{Servers: []string{d.cfg.Endpoint}, CAFile: d.cfg.CAFile, CertFile: d.cfg.CertFile, KeyFile: d.cfg.KeyFile}
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
