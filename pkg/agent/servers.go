package agent

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/loadbalancer"
	"github.com/kubox-io/kubox/pkg/logging"
)

// serversRefresh is how often the balancer's list of API servers is read
// again from the cluster: servers join, leave and change addresses while
// the node runs.
const serversRefresh = 15 * time.Second

// followServers keeps lb's list equal to the API servers the kubernetes
// Service's endpoints name, plus the server the node was started with
// (--server), which stays as the last resort.
func followServers(ctx context.Context, lb *loadbalancer.LoadBalancer, kubeconfig, serverAddress string, log *logging.Logger) error {
	client, err := kubeclient.New(kubeconfig)
	if err != nil {
		return err
	}
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		urls, err := join.APIServerURLs(lctx, client)
		cancel()
		if err == nil && len(urls) > 0 {
			next := addresses(urls, serverAddress)
			if cur := lb.Servers(); !sameSet(cur, next) {
				log.Infof("API servers: %v", next)
				lb.SetServers(next)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(serversRefresh):
		}
	}
}

// addresses turns API server URLs into the balancer's host:port list, with
// last appended when it is not listed.
func addresses(urls []string, last string) []string {
	var out []string
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			out = append(out, config.ServerAddress(u))
		}
	}
	if !slices.Contains(out, last) {
		out = append(out, last)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}
