package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/idlegc"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/kuboxmetrics"
	"github.com/kubox-io/kubox/pkg/loadbalancer"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/version"
)

// check refuses, before anything is written or opened, a node that cannot
// join: a token of the wrong format, or a first join with no token (a node
// that joined before renews with its own certificate).
func check(j *config.Join) error {
	if j.Token != "" {
		if _, err := join.ParseToken(j.Token); err != nil {
			return err
		}
	}
	if _, err := savedCluster(j.Paths.AgentTLSDir); err != nil && j.Token == "" {
		return errNoToken
	}
	return nil
}

// Run runs a node that joins the server of j until ctx ends: it reaches the
// API through a balancer on loopback that knows every server, joins (or
// renews its credentials), then runs the node's components and renews its
// certificates while it runs.
func Run(ctx context.Context, j *config.Join, log *logging.Logger) error {
	if err := check(j); err != nil {
		return err
	}
	phases := component.NewPhases(time.Now())
	log.Infof("starting kubox agent %s (kubernetes %s), data dir %s, server %s", version.Version, version.Kubernetes(), j.Paths.DataDir, j.ServerURL)
	lb, err := loadbalancer.Listen(j.LBAddress, []string{j.ServerAddress}, log.For("api-lb"))
	if err != nil {
		return err
	}
	lbCtx, stopLB := context.WithCancel(context.Background())
	defer stopLB()
	go lb.Serve(lbCtx)
	apiURL := "https://" + lb.Address()
	creds, cluster, req, err := joinServer(ctx, j, apiURL, log)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	lb.SetServers(append([]string{j.ServerAddress}, addresses(cluster.ServerURLs, j.ServerAddress)...))
	node, err := j.Agent(cluster)
	if err != nil {
		return err
	}
	// The node renews its certificates through the balancer, with its own
	// client certificate, while it runs.
	renewer := &join.Renewer{Dir: j.Paths.AgentTLSDir, ServerURL: apiURL, APIURL: apiURL, Request: req,
		RenewBefore: config.CertRenewBefore, Log: log.For("node-certs")}
	imports := &kuboxmetrics.Imports{}
	host, rest := Components(node, j.Paths, creds, log, phases, imports)
	comps := append(append(host, rest...),
		&component.Restart{Inner: &component.Func{ComponentName: "node-certs", Run: renewer.Run}, Log: log},
		&component.Restart{Log: log, Inner: &component.Func{ComponentName: "api-servers", Run: func(ctx context.Context) error {
			return followServers(ctx, lb, creds.Kubeconfig, j.ServerAddress, log.For("api-lb"))
		}}},
		idlegc.Component(log.For("idle-gc")))
	defer kuboxmetrics.New(kuboxmetrics.Sources{Phases: phases, CertDirs: []string{j.Paths.AgentTLSDir}, Imports: imports}).Register(log.Warnf)()
	return (&component.Runner{Log: log, Phases: phases}).Run(ctx, comps...)
}

// joinServer gets the node's credentials (a kubeconfig pointing at apiURL)
// and the cluster's values from the server. A node that joined before
// renews them with its own client certificate and needs no token; a new
// node joins with the token. A server that cannot be reached is tried again
// with back-off; meanwhile a node that joined before runs on what it has,
// so its pods keep running. A refusal (wrong token, CA, or a node name
// taken) ends it.
func joinServer(ctx context.Context, j *config.Join, apiURL string, log *logging.Logger) (config.NodeCredentials, config.Cluster, join.NodeRequest, error) {
	var req join.NodeRequest
	fail := func(err error) (config.NodeCredentials, config.Cluster, join.NodeRequest, error) {
		return config.NodeCredentials{}, config.Cluster{}, req, err
	}
	p := j.Paths
	password, err := nodePassword(filepath.Join(p.AgentDir, "node-password"))
	if err != nil {
		return fail(err)
	}
	pre, err := j.Agent(config.Cluster{})
	if err != nil {
		return fail(err)
	}
	req = join.NodeRequest{NodeName: pre.NodeName, NodePassword: password, Addresses: ipStrings(pre.NodeIPs)}
	saved, savedErr := savedCluster(p.AgentTLSDir)
	if savedErr != nil && j.Token == "" {
		return fail(errNoToken)
	}
	renewer := &join.Renewer{Dir: p.AgentTLSDir, ServerURL: j.ServerURL, APIURL: apiURL, Request: req}
	delay := time.Second
	for {
		var b *join.NodeBundle
		if savedErr == nil {
			b, err = renewer.RenewNow(ctx)
			if errors.Is(err, join.ErrRefused) {
				if j.Token == "" {
					return fail(fmt.Errorf("%w; give a join token (--token) to join again", err))
				}
				log.Warnf("the server refused the node's saved credentials (%v): joining again with the token", err)
				savedErr = err
				continue
			}
		} else if b, err = join.Join(ctx, j.ServerURL, j.Token, req, join.JoinOptions{}); err == nil {
			if b.TrustedOnFirstUse {
				log.Warnf("the token does not pin the server's CA: trusted the CA %s served on first use; use the full token (K1…::…) to rule out a man in the middle", j.ServerURL)
			}
			if _, err := join.WriteBundle(p.AgentTLSDir, apiURL, b); err != nil {
				return fail(err)
			}
		}
		if err == nil {
			data, _ := json.Marshal(b.Cluster)
			if err := os.WriteFile(clusterFile(p.AgentTLSDir), data, 0o600); err != nil {
				return fail(err)
			}
			log.Infof("joined %s as node %s", j.ServerURL, req.NodeName)
			return config.NodeCredentialsIn(p.AgentTLSDir), b.Cluster, req, nil
		}
		if ctx.Err() != nil {
			return fail(nil)
		}
		if errors.Is(err, join.ErrCAMismatch) || errors.Is(err, join.ErrUnauthorized) || errors.Is(err, join.ErrNodeNameTaken) {
			return fail(err)
		}
		if savedErr == nil {
			log.Warnf("cannot reach %s (%v): starting with the credentials of the last join; the node reconnects by itself", j.ServerURL, err)
			return config.NodeCredentialsIn(p.AgentTLSDir), saved, req, nil
		}
		log.Warnf("cannot join yet: %v; retrying in %s", err, delay)
		select {
		case <-ctx.Done():
			return fail(nil)
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// clusterFile, in the node's credential directory, keeps the cluster's
// values from the last join or renewal.
func clusterFile(tlsDir string) string { return filepath.Join(tlsDir, "cluster.json") }

var errNoToken = errors.New("no join token: give --token (or KUBOX_TOKEN, or --token-file) for the node's first join; the server keeps it in <data-dir>/server/token")

// savedCluster reads what an earlier join left in the node's credential
// directory dir: the cluster's values and the node's credential.
func savedCluster(dir string) (config.Cluster, error) {
	var cluster config.Cluster
	file := clusterFile(dir)
	data, err := os.ReadFile(file)
	if err != nil {
		return cluster, err
	}
	if err := json.Unmarshal(data, &cluster); err != nil {
		return cluster, fmt.Errorf("%s: %w", file, err)
	}
	if _, err := os.Stat(config.NodeCredentialsIn(dir).Credential); err != nil {
		return cluster, err
	}
	return cluster, nil
}

// nodePassword is this machine's proof that it owns its node name: made
// once, kept in the data dir.
func nodePassword(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("cannot create %s: %w; check --data-dir", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cannot write the node password %s: %w", path, err)
	}
	return pw, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
