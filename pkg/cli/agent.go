package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/agent"
	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
	"github.com/kubox-io/kubox/pkg/configfile"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/loadbalancer"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/version"
)

// agentCommand runs a node that joins a server: containerd, kubelet,
// kube-proxy and flannel, with no control plane.
func agentCommand() *ucli.Command {
	ao := &config.AgentOptions{}
	nodeOpts, nodeVals := nodeFlags(ao)
	var configFile, serverURL, token, tokenFile, dataDir, runDir string
	var debug bool
	var verbosity, lbPort int
	return &ucli.Command{
		Name:         "agent",
		Usage:        "run a node that joins a kubox server",
		OnUsageError: usageError,
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &configFile,
				Usage: "config file with flags as YAML keys (config.yaml.d/*.yaml beside it are read too)"},
			&ucli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"KUBOX_URL"}, Destination: &serverURL, Usage: "the server to join, https://<address>:6443"},
			&ucli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"KUBOX_TOKEN"}, Destination: &token, Usage: "join token for the first join (the server's <data-dir>/server/token, or one from 'kubox token create'); a node that joined renews with its own certificate"},
			&ucli.StringFlag{Name: "token-file", EnvVars: []string{"KUBOX_TOKEN_FILE"}, Destination: &tokenFile, Usage: "file holding the join token"},
			&ucli.IntFlag{Name: "lb-server-port", Value: 6444, Destination: &lbPort, Usage: "loopback port of the agent's API load balancer"},
			&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &dataDir, Usage: "where kubox keeps its state"},
			&ucli.StringFlag{Name: "run-dir", Destination: &runDir, Usage: "runtime state such as sockets (default /run/kubox, or one derived from --data-dir)"},
			&ucli.StringFlag{Name: "profile", Destination: &ao.Profile,
				Usage: "hardening profile: " + strings.Join(config.Profiles, ", ") + " (on a node: --protect-kernel-defaults)"},
			&ucli.BoolFlag{Name: "debug", EnvVars: []string{"KUBOX_DEBUG"}, Destination: &debug, Usage: "debug logging"},
			&ucli.IntFlag{Name: "v", Destination: &verbosity, Usage: "log verbosity of the Kubernetes components (klog -v)"},
		}, nodeOpts...),
		Action: func(c *ucli.Context) error {
			files, err := configfile.Files(configFile, c.IsSet("config"))
			if err != nil {
				return err
			}
			if err := configfile.Apply(c, "kubox agent", files); err != nil {
				return err
			}
			if err := checkServerURL(serverURL); err != nil {
				return err
			}
			if token == "" && tokenFile != "" {
				data, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("cannot read --token-file: %v", err)
				}
				token = strings.TrimSpace(string(data))
			}
			if token != "" {
				if _, err := join.ParseToken(token); err != nil {
					return err
				}
			}
			nodeVals.into(ao)
			dir, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			if runDir == "" {
				runDir = paths.RunDirFor(dir, config.DefaultDataDir)
			}
			if runDir, err = filepath.Abs(runDir); err != nil {
				return err
			}
			p := paths.New(dir, config.DefaultConfigDir, runDir)
			// The node's own settings, checked before anything is
			// asked of the server; cluster values come with the join.
			if _, err := ao.Agent(clusterValues(join.ClusterConfig{}, debug, verbosity)); err != nil {
				return err
			}
			// A node's first join needs the token; one that joined
			// renews with its own certificate. Checked before anything
			// is written or opened.
			if _, err := savedCluster(p.AgentTLSDir, filepath.Join(p.AgentTLSDir, clusterFileName)); err != nil && token == "" {
				return errNoToken
			}

			log := logging.New(os.Stderr, verbosity, debug)
			log.InstallGlobal()
			log.Infof("starting kubox agent %s (kubernetes %s), data dir %s, server %s", version.Version, version.Kubernetes(), dir, serverURL)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()

			// The node's components reach the API through a balancer on
			// loopback that knows every server.
			u, _ := url.Parse(serverURL)
			lb, err := loadbalancer.Listen(net.JoinHostPort("127.0.0.1", strconv.Itoa(lbPort)), []string{hostPortOf(u)}, log.For("api-lb"))
			if err != nil {
				return err
			}
			lbCtx, stopLB := context.WithCancel(context.Background())
			defer stopLB()
			go lb.Serve(lbCtx)
			apiURL := "https://" + lb.Address()
			creds, cluster, req, err := joinServer(ctx, p, serverURL, apiURL, token, ao, log)
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			servers := []string{hostPortOf(u)}
			for _, s := range cluster.ServerURLs {
				if su, err := url.Parse(s); err == nil && su.Host != "" {
					servers = append(servers, hostPortOf(su))
				}
			}
			lb.SetServers(servers)
			// The pod network's backend is the cluster's, not the node's.
			ao.FlannelBackend = cluster.FlannelBackend
			node, err := ao.Agent(clusterValues(cluster, debug, verbosity))
			if err != nil {
				return err
			}
			// The node renews its certificates through the balancer, with
			// its own client certificate, while it runs.
			renewer := &join.Renewer{Dir: p.AgentTLSDir, ServerURL: apiURL, APIURL: apiURL, Request: req,
				RenewBefore: config.CertRenewBefore, Log: log.For("node-certs")}
			host, rest := agent.Components(node, p, creds, log)
			comps := append(append(host, rest...),
				&component.Restart{Inner: &component.Func{ComponentName: "node-certs", Run: renewer.Run}, Log: log})
			if err := (&component.Runner{Log: log}).Run(ctx, comps...); err != nil {
				return err
			}
			log.Infof("stopped")
			return nil
		},
	}
}

func checkServerURL(s string) error {
	if s == "" {
		return errors.New("no server to join: give --server https://<server address>:6443 (or KUBOX_URL)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("invalid --server %q: give it as https://<server address>:6443", s)
	}
	return nil
}

// clusterValues carries what the server told the node into the shape the
// node configuration is checked against.
func clusterValues(c join.ClusterConfig, debug bool, verbosity int) *config.Server {
	s := &config.Server{ClusterDomain: c.ClusterDomain, Debug: debug, Verbosity: verbosity, Disabled: map[string]bool{}}
	for _, name := range c.Disabled {
		s.Disabled[name] = true
	}
	_, s.ClusterCIDR, _ = net.ParseCIDR(orDefault(c.ClusterCIDR, config.DefaultClusterCIDR))
	_, s.ServiceCIDR, _ = net.ParseCIDR(orDefault(c.ServiceCIDR, config.DefaultServiceCIDR))
	s.ClusterDNS = net.ParseIP(orDefault(c.ClusterDNS, config.DefaultClusterDNS))
	if s.ClusterDomain == "" {
		s.ClusterDomain = config.DefaultClusterDomain
	}
	return s
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// joinServer gets the node's credentials (a kubeconfig pointing at apiURL)
// and the cluster's values from the server. A node that joined before
// renews them with its own client certificate and needs no token; a new
// node joins with the token. A server that cannot be reached is tried again
// with back-off; meanwhile a node that joined before runs on what it has,
// so its pods keep running. A refusal (wrong token, CA, or a node name
// taken) ends it.
func joinServer(ctx context.Context, p paths.Paths, serverURL, apiURL, token string, ao *config.AgentOptions, log *logging.Logger) (config.NodeCredentials, join.ClusterConfig, join.NodeRequest, error) {
	var none join.ClusterConfig
	var req join.NodeRequest
	fail := func(err error) (config.NodeCredentials, join.ClusterConfig, join.NodeRequest, error) {
		return config.NodeCredentials{}, none, req, err
	}
	password, err := nodePassword(filepath.Join(p.AgentDir, "node-password"))
	if err != nil {
		return fail(err)
	}
	pre, err := ao.Agent(clusterValues(none, false, 0))
	if err != nil {
		return fail(err)
	}
	req = join.NodeRequest{NodeName: pre.NodeName, NodePassword: password, Addresses: []string{pre.NodeIP.String()}}
	clusterFile := filepath.Join(p.AgentTLSDir, clusterFileName)
	saved, savedErr := savedCluster(p.AgentTLSDir, clusterFile)
	if savedErr != nil && token == "" {
		return fail(errNoToken)
	}
	renewer := &join.Renewer{Dir: p.AgentTLSDir, ServerURL: serverURL, APIURL: apiURL, Request: req}
	delay := time.Second
	for {
		var b *join.NodeBundle
		if savedErr == nil {
			b, err = renewer.RenewNow(ctx)
			if errors.Is(err, join.ErrRefused) {
				if token == "" {
					return fail(fmt.Errorf("%w; give a join token (--token) to join again", err))
				}
				log.Warnf("the server refused the node's saved credentials (%v): joining again with the token", err)
				savedErr = err
				continue
			}
		} else if b, err = join.Join(ctx, serverURL, token, req, join.JoinOptions{}); err == nil {
			if b.TrustedOnFirstUse {
				log.Warnf("the token does not pin the server's CA: trusted the CA %s served on first use; use the full token (K1…::…) to rule out a man in the middle", serverURL)
			}
			if _, err := join.WriteBundle(p.AgentTLSDir, apiURL, b); err != nil {
				return fail(err)
			}
		}
		if err == nil {
			data, _ := json.Marshal(b.Cluster)
			if err := os.WriteFile(clusterFile, data, 0o600); err != nil {
				return fail(err)
			}
			log.Infof("joined %s as node %s", serverURL, req.NodeName)
			return config.NodeCredentialsIn(p.AgentTLSDir), b.Cluster, req, nil
		}
		if ctx.Err() != nil {
			return fail(nil)
		}
		if errors.Is(err, join.ErrCAMismatch) || errors.Is(err, join.ErrUnauthorized) || errors.Is(err, join.ErrNodeNameTaken) {
			return fail(err)
		}
		if savedErr == nil {
			log.Warnf("cannot reach %s (%v): starting with the credentials of the last join; the node reconnects by itself", serverURL, err)
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

// clusterFileName, in the node's credential directory, keeps the cluster's
// values from the last join or renewal.
const clusterFileName = "cluster.json"

var errNoToken = errors.New("no join token: give --token (or KUBOX_TOKEN, or --token-file) for the node's first join; the server keeps it in <data-dir>/server/token")

// savedCluster reads what an earlier join left: the cluster's values and
// the node's credential.
func savedCluster(dir, clusterFile string) (join.ClusterConfig, error) {
	var cluster join.ClusterConfig
	data, err := os.ReadFile(clusterFile)
	if err != nil {
		return cluster, err
	}
	if err := json.Unmarshal(data, &cluster); err != nil {
		return cluster, fmt.Errorf("%s: %w", clusterFile, err)
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

// hostPortOf is a URL's host:port, with the API's default port.
func hostPortOf(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(config.DefaultHTTPSPort))
}
