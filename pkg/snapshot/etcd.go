package snapshot

import (
	"context"
	"fmt"
	"strings"
	"time"

	kinetls "github.com/k3s-io/kine/pkg/tls"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/pkg/config"
)

// saveEtcd streams an etcd snapshot (the member's whole backend at one
// revision) into dst.
func saveEtcd(ctx context.Context, ds config.Datastore, dst string) error {
	tlsCfg, err := kinetls.Config{CAFile: ds.CAFile, CertFile: ds.CertFile, KeyFile: ds.KeyFile}.ClientConfig()
	if err != nil {
		return fmt.Errorf("cannot load the etcd TLS files: %w; check --datastore-cafile, --datastore-certfile and --datastore-keyfile", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(ds.Endpoint, ","), DialTimeout: 10 * time.Second, TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("cannot reach etcd: %w; check --datastore-endpoint", err)
	}
	defer cli.Close()
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("etcd refused a snapshot: %w", err)
	}
	defer rc.Close()
	if err := writeFrom(dst, rc); err != nil {
		return fmt.Errorf("etcd snapshot cut short: %w", err)
	}
	return nil
}
