// Package etcdmember keeps the membership of the servers' embedded etcd in
// step with the cluster: it lists the members with their health (for
// `kubox etcd member list`), and removes the member of a server whose node
// is deleted, which is how an operator takes a server out for good.
package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/pkg/pki"
)

// Annotation, on a server's node, names the etcd member that server runs.
const Annotation = "etcd.kubox.io/member-name"

// Client opens an etcd client with the client certificate in files.
func Client(files pki.Etcd, endpoints []string, dialTimeout time.Duration) (*clientv3.Client, error) {
	tlsCfg, err := (transport.TLSInfo{CertFile: files.ClientCert, KeyFile: files.ClientKey, TrustedCAFile: files.CA}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot load the etcd client certificate: %w", err)
	}
	return clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: dialTimeout, TLS: tlsCfg, Logger: zap.NewNop()})
}

// Member is one member of the cluster as its peers and its own status see it.
type Member struct {
	ID         uint64
	Name       string // empty for a learner that has not started yet
	PeerURLs   []string
	ClientURLs []string
	Learner    bool
	// Health is "healthy", or why the member's own status could not be read.
	Health string
	Leader bool
}

// HexID is the member's ID as etcd prints it.
func (m Member) HexID() string { return strconv.FormatUint(m.ID, 16) }

// List returns the cluster's members, each asked for its status on its
// own client URLs within timeout.
func List(ctx context.Context, cli *clientv3.Client, timeout time.Duration) ([]Member, error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list the etcd members through %v: %w", cli.Endpoints(), err)
	}
	var out []Member
	for _, m := range list.Members {
		mem := Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner, Health: "not started"}
		for _, u := range m.ClientURLs {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			st, err := cli.Status(sctx, u)
			cancel()
			switch {
			case err != nil:
				mem.Health = "unreachable: " + err.Error()
				continue
			case len(st.Errors) > 0:
				mem.Health = "unhealthy: " + st.Errors[0]
			default:
				mem.Health = "healthy"
				mem.Leader = st.Leader == m.ID
			}
			break
		}
		out = append(out, mem)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ErrNotMember says no member has the name asked for.
var ErrNotMember = errors.New("no etcd member of that name")

// Remove takes the member called name out of the cluster. It is a no-op
// (ErrNotMember) when there is none: every server acts on a deleted node,
// and the first one wins.
func Remove(ctx context.Context, cli *clientv3.Client, name string) error {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return err
	}
	for _, m := range list.Members {
		if m.Name != name {
			continue
		}
		if _, err := cli.MemberRemove(ctx, m.ID); err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
			return fmt.Errorf("cannot remove etcd member %s: %w", name, err)
		}
		return nil
	}
	return ErrNotMember
}
