package join

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// serverPath: POST with the server token's secret (never a bootstrap or
// agent token): the files every server of the cluster shares, for a server
// that joins.
const serverPath = pathPrefix + "server"

// ServerBundle is what a joining server gets: the cluster's CAs with their
// keys, the service-account key, the encryption configuration and the
// token, as files relative to the server directory (<data-dir>/server),
// the cluster's values, and where the etcd members take clients.
type ServerBundle struct {
	Files          map[string]string `json:"files"`
	Cluster        ClusterConfig     `json:"cluster"`
	EtcdClientURLs []string          `json:"etcdClientURLs"`
}

// serveServer hands the shared files to a server that presents the main
// secret. Only a server with an embedded etcd member takes servers.
func (s *Server) serveServer(w http.ResponseWriter, r *http.Request) {
	if s.throttled(w, r) {
		return
	}
	scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(secret))
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) != 1 {
		s.failures.fail(sourceOf(r), time.Now())
		err := unknownToken
		if _, _, ok := splitBootstrap(secret); ok {
			err = rejected("a server joins with the server token (<data-dir>/server/token on a server), not a bootstrap token")
		}
		s.fail(w, r, err)
		return
	}
	if s.cfg.ServerBundle == nil {
		s.fail(w, r, &httpError{http.StatusConflict, "this server keeps no etcd member that others can join: start the first server with --cluster-init"})
		return
	}
	b, err := s.cfg.ServerBundle()
	if err != nil {
		s.fail(w, r, internal("cannot gather the cluster's files: %v", err))
		return
	}
	s.cfg.Log.Infof("server at %s joins the cluster", sourceOf(r))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(b)
}

// JoinServer fetches the files a joining server needs from the server at
// serverURL, over TLS verified by the CA the token pins; the token must
// pin it, since the answer holds the cluster's CA keys.
func JoinServer(ctx context.Context, serverURL, token string, timeout time.Duration) (*ServerBundle, error) {
	if t, err := ParseToken(token); err == nil && t.CAHash == "" {
		return nil, fmt.Errorf("a server joins with the full server token (K1<CA hash>::<secret>, in <data-dir>/server/token on %s), which pins the cluster's CA", serverURL)
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	base, t, roots, err := reachServer(ctx, serverURL, token, timeout)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+serverPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.Secret)
	resp, body, err := roundTrip(req, base, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}, timeout)
	if err != nil {
		return nil, err
	}
	if err := checkClock(resp.Header.Get("Date"), time.Now(), base); err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, &serverError{base, ErrUnauthorized, firstLine(body)}
	default:
		return nil, fmt.Errorf("%s refused to take this server: %s", base, firstLine(body))
	}
	var b ServerBundle
	if err := json.Unmarshal(body, &b); err != nil || len(b.Files) == 0 {
		return nil, fmt.Errorf("%s sent no cluster files: check that --server is a kubox server", base)
	}
	return &b, nil
}

// apiServers are the API's addresses a node's balancer spreads over: this
// server's, and every server the kubernetes Service's endpoints name.
func (s *Server) apiServers(ctx context.Context) []string {
	urls := append([]string{}, s.cfg.Cluster.ServerURLs...)
	listed, _ := APIServerURLs(ctx, s.cfg.Client) // on error, this server's own address serves
	for _, u := range listed {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	return urls
}

// APIServerURLs lists the cluster's API servers: the endpoints of the
// kubernetes Service, where each API server keeps its own address while it
// runs.
func APIServerURLs(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	list, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, sl := range list.Items {
		for _, p := range sl.Ports {
			if p.Port == nil {
				continue
			}
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, a := range ep.Addresses {
					u := "https://" + net.JoinHostPort(a, strconv.Itoa(int(*p.Port)))
					if !slices.Contains(urls, u) {
						urls = append(urls, u)
					}
				}
			}
		}
	}
	return urls, nil
}

// MaxClockSkew is how far a joining server's clock may be from the
// cluster's: etcd's leases and every certificate's validity assume clocks
// that agree to within seconds.
const MaxClockSkew = 10 * time.Second

// checkClock refuses a join when this machine's clock (now) and the
// server's (its Date header) differ by more than MaxClockSkew.
func checkClock(date string, now time.Time, server string) error {
	theirs, err := http.ParseTime(date)
	if err != nil {
		return nil // no Date header: nothing to compare
	}
	skew := now.Sub(theirs).Round(time.Second)
	if skew.Abs() <= MaxClockSkew {
		return nil
	}
	return fmt.Errorf("this machine's clock is %s: servers of a cluster need clocks within %s of each other; sync them (NTP, chrony or systemd-timesyncd) and start again", DescribeSkew(skew, server), MaxClockSkew)
}

// DescribeSkew says how this machine's clock stands to server's, skew
// being how far it is ahead.
func DescribeSkew(skew time.Duration, server string) string {
	way := "ahead of"
	if skew < 0 {
		way = "behind"
	}
	return fmt.Sprintf("%s %s %s's", skew.Abs(), way, server)
}

// ClockSkew is how far this machine's clock is ahead of the server's
// (negative: behind), read from the Date header of the server's CA
// bundle, which anyone may fetch; to the second, as the header is.
func ClockSkew(ctx context.Context, serverURL string, timeout time.Duration) (time.Duration, string, error) {
	base, err := parseServerURL(serverURL)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+cacertsPath, nil)
	if err != nil {
		return 0, base, err
	}
	resp, _, err := roundTrip(req, base, nil, timeout)
	if err != nil {
		return 0, base, err
	}
	theirs, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, base, fmt.Errorf("%s answered without a Date header: check that --server is a kubox server", base)
	}
	return time.Since(theirs).Round(time.Second), base, nil
}
