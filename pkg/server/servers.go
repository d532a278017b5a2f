package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubox-io/kubox/pkg/atomicfile"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/logging"
)

// sharedFiles are the files, relative to <data-dir>/server, that every
// server of a cluster holds alike: the CAs with their keys, the
// service-account key, the encryption configuration and the join token.
// Each server makes its own certificates from the CAs.
var sharedFiles = []string{
	"tls/server-ca.crt", "tls/server-ca.key", "tls/client-ca.crt", "tls/client-ca.key",
	"tls/request-header-ca.crt", "tls/request-header-ca.key", "tls/kubelet-ca.crt", "tls/kubelet-ca.key",
	"tls/service.key", "tls/etcd/etcd-ca.crt", "tls/etcd/etcd-ca.key",
	"cred/encryption-config.yaml", "token",
}

// serverBundle is what this server hands a server that joins it.
func (s *Server) serverBundle() (*join.ServerBundle, error) {
	b := &join.ServerBundle{Files: map[string]string{}, Cluster: s.cfg.Cluster(),
		EtcdClientURLs: []string{s.cfg.Datastore.Etcd.AdvertiseURL()}}
	for _, rel := range sharedFiles {
		data, err := os.ReadFile(filepath.Join(s.cfg.Paths.ServerDir, rel))
		if errors.Is(err, os.ErrNotExist) {
			continue // no encryption configuration
		}
		if err != nil {
			return nil, err
		}
		b.Files[rel] = string(data)
	}
	return b, nil
}

// joinCluster fetches the cluster's shared files from the server a new
// member joins and writes them before this server makes anything of its
// own, so that its certificates come from the cluster's CAs. It returns
// where the etcd members take clients.
func (s *Server) joinCluster(log *logging.Logger) ([]string, error) {
	j := s.cfg.Datastore.Etcd.Join
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := join.JoinServer(ctx, j.URL, j.Token, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot join %s: %w", j.URL, err)
	}
	if err := sameCluster(s.cfg.Cluster(), b.Cluster); err != nil {
		return nil, err
	}
	for rel, content := range b.Files {
		if !allowedShared(rel) {
			return nil, fmt.Errorf("%s sent %s, which is not a file servers share", j.URL, rel)
		}
		path := filepath.Join(s.cfg.Paths.ServerDir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	log.Infof("joining the cluster of %s: its CAs and keys are in %s", j.URL, s.cfg.Paths.TLSDir)
	return b.EtcdClientURLs, nil
}

func allowedShared(rel string) bool {
	for _, f := range sharedFiles {
		if f == rel {
			return true
		}
	}
	return false
}

// sameCluster refuses to join a cluster whose networks differ from this
// server's flags: its pods and Services would not be reachable.
func sameCluster(mine, theirs config.Cluster) error {
	for _, c := range []struct{ flag, mine, theirs string }{
		{"--cluster-cidr", mine.ClusterCIDR, theirs.ClusterCIDR},
		{"--service-cidr", mine.ServiceCIDR, theirs.ServiceCIDR},
		{"--cluster-dns", mine.ClusterDNS, theirs.ClusterDNS},
		{"--cluster-domain", mine.ClusterDomain, theirs.ClusterDomain},
		{"--flannel-backend", mine.FlannelBackend, theirs.FlannelBackend},
	} {
		if c.mine != c.theirs {
			return fmt.Errorf("%s is %s here but %s in the cluster: start this server with %s %s", c.flag, c.mine, c.theirs, c.flag, c.theirs)
		}
	}
	return nil
}
