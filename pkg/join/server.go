package join

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// maxRequestBytes bounds a join request; a real one is a few hundred bytes.
const maxRequestBytes = 64 << 10

// ServerConfig is what a Server hands out and checks tokens against.
type ServerConfig struct {
	CABundle []byte  // server CA bundle PEM: verifies the API; its hash is in the token
	ClientCA *pki.CA // signs the node's client certificate, and verifies it on renewal
	// KubeletCA signs kubelets' serving certificates and nothing else: no
	// certificate a node gets is valid for the API server or any other
	// client that trusts the server CA.
	KubeletCA *pki.CA
	Secret    string // the main secret (the bare content of <data-dir>/server/token)
	// Client reads bootstrap tokens, Nodes and node password records.
	Client  kubernetes.Interface
	Cluster ClusterConfig
	// ReservedNames and ReservedIPs are the server's: the names and addresses
	// of the API and the server's own node. No joining node gets them.
	ReservedNames []string
	ReservedIPs   []net.IP
	// CertValidity is how long a node's certificates are valid; 0 means
	// 365 days. Nodes renew them when two thirds have passed.
	CertValidity time.Duration
	// FailureLimit failed attempts from one address within FailureWindow
	// make it wait until the window ends (429). 0 means 10 per minute.
	FailureLimit  int
	FailureWindow time.Duration
	Log           *logging.Logger
	// ServerBundle gathers what a joining server gets (ServerBundle);
	// nil on a server that takes no servers.
	ServerBundle func() (*ServerBundle, error)
	// Ready is closed once the cluster's node policies (RBAC, admission)
	// are in place; until then new nodes are told to retry (503), so none
	// holds credentials the policies do not yet bound. nil: always ready.
	Ready <-chan struct{}
}

// Server serves the join routes.
type Server struct {
	cfg       ServerConfig
	secretSum [sha256.Size]byte
	clientCAs *x509.CertPool
	failures  *limiter
	mux       *http.ServeMux
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.ClientCA == nil || cfg.KubeletCA == nil:
		return nil, errors.New("join server: the client CA and the kubelet CA are required")
	case cfg.Client == nil:
		return nil, errors.New("join server: a Kubernetes client is required")
	case cfg.Log == nil:
		return nil, errors.New("join server: a logger is required")
	case !hex64RE.MatchString(cfg.Secret):
		return nil, errors.New("join server: the main secret must be 64 hexadecimal characters")
	case !x509.NewCertPool().AppendCertsFromPEM(cfg.CABundle):
		return nil, errors.New("join server: the CA bundle holds no PEM certificate")
	}
	if cfg.FailureLimit <= 0 {
		cfg.FailureLimit = 10
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = time.Minute
	}
	s := &Server{cfg: cfg, secretSum: sha256.Sum256([]byte(cfg.Secret)), clientCAs: x509.NewCertPool(),
		failures: newLimiter(cfg.FailureLimit, cfg.FailureWindow), mux: http.NewServeMux()}
	// The whole client CA file: after `kubox certificate rotate-ca` it also
	// holds the CA it replaced, which signed the certificates nodes renew
	// with until they have new ones.
	s.clientCAs.AppendCertsFromPEM(cfg.ClientCA.CertPEM)
	s.clientCAs.AddCert(cfg.ClientCA.Cert)
	s.mux.HandleFunc("GET "+cacertsPath, s.serveCACerts)
	s.mux.HandleFunc("POST "+nodePath, s.serveNode)
	s.mux.HandleFunc("POST "+renewPath, s.serveRenew)
	s.mux.HandleFunc("POST "+serverPath, s.serveServer)
	return s, nil
}

// Wrap serves the paths under /v1-kubox/ and passes every other request to
// next unchanged.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, pathPrefix) {
			s.mux.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ready says whether new nodes may join yet.
func (s *Server) ready() bool {
	if s.cfg.Ready == nil {
		return true
	}
	select {
	case <-s.cfg.Ready:
		return true
	default:
		return false
	}
}

// serveCACerts needs no token: the agent checks what it gets against the
// hash in its token before it sends the secret anywhere.
func (s *Server) serveCACerts(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.cfg.CABundle)
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request) {
	if !s.ready() {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, &httpError{http.StatusServiceUnavailable, "the server is still starting: its node policies are not in place yet; retry in a moment"})
		return
	}
	s.serve(w, r, func(r *http.Request) (string, error) {
		return s.authenticate(r.Context(), r.Header.Get("Authorization"))
	}, func(ctx context.Context, _ string, req NodeRequest) error {
		return s.claimNodeName(ctx, req.NodeName, req.NodePassword)
	}, "joined with ")
}

// serveRenew hands a joined node new certificates for its client
// certificate: no token is needed once a node has joined.
func (s *Server) serveRenew(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, s.nodeOfClient, func(ctx context.Context, name string, req NodeRequest) error {
		if req.NodeName != name {
			return &httpError{http.StatusForbidden, fmt.Sprintf("node %s may renew only its own certificates, not node %s's", name, req.NodeName)}
		}
		return s.checkNodePassword(ctx, name, req.NodePassword)
	}, "renewed its certificates as ")
}

// serve runs what both routes share: a source that failed too often waits;
// authenticate says who asks (its failures count against the source); the
// request is decoded and admitted; the node's certificates are issued.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, authenticate func(*http.Request) (string, error),
	admit func(ctx context.Context, who string, req NodeRequest) error, what string) {
	if s.throttled(w, r) {
		return
	}
	who, err := authenticate(r)
	if err != nil {
		s.failures.fail(sourceOf(r), time.Now())
		s.fail(w, r, err)
		return
	}
	req, err := s.decodeNodeRequest(w, r)
	if err == nil {
		err = admit(r.Context(), who, req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answer(w, r, req, what+who)
}

// answer issues the node's certificates once its addresses are its own.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, req NodeRequest, what string) {
	if err := s.checkAddresses(r.Context(), req); err != nil {
		s.fail(w, r, err)
		return
	}
	bundle, err := s.issue(r.Context(), req)
	if err != nil {
		s.fail(w, r, internal("issuing certificates for node %s: %v", req.NodeName, err))
		return
	}
	data, err := json.Marshal(bundle)
	if err != nil {
		s.fail(w, r, internal("encoding the node bundle: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
	s.cfg.Log.Infof("node %s %s", req.NodeName, what)
}

// throttled answers 429 when the request's source failed too often.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request) bool {
	wait, ok := s.failures.blocked(sourceOf(r), time.Now())
	if ok {
		return false
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.fail(w, r, &httpError{http.StatusTooManyRequests, fmt.Sprintf(
		"too many failed join attempts from this address: retry in %d s, with a token that is valid on this server", secs)})
	return true
}

func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// nodeOfClient returns the node a request's client certificate names, once
// it verifies against the client CA.
func (s *Server) nodeOfClient(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", &httpError{http.StatusUnauthorized, "no client certificate: renewing needs the node's own certificate; join again with a token if it is lost"}
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.clientCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", &httpError{http.StatusUnauthorized, "the node's client certificate is not valid on this server (" + err.Error() + "): join again with a token"}
	}
	name, ok := strings.CutPrefix(leaf.Subject.CommonName, pki.NodeUserPrefix)
	if !ok || name == "" || !slices.Contains(leaf.Subject.Organization, pki.NodesGroup) {
		return "", &httpError{http.StatusForbidden, fmt.Sprintf("%s is not a node: only a node renews its certificates here", leaf.Subject.CommonName)}
	}
	return name, nil
}

// httpError is a failure with the status and the one line the agent shows.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func rejected(format string, args ...any) error {
	return &httpError{http.StatusUnauthorized, "token rejected: " + fmt.Sprintf(format, args...)}
}

// unknownToken is the one answer for a token that is not this server's,
// whether its id is unknown or its secret wrong, so that the answer tells
// a guesser nothing.
var unknownToken = rejected("this server does not know the token: copy it again from the server's <data-dir>/server/token, or create one with 'kubox token create'")

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func internal(format string, args ...any) error {
	return &httpError{http.StatusInternalServerError, fmt.Sprintf(format, args...)}
}

// fail answers with err's status and line, and logs it: the agent's operator
// sees the line, the server's operator the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	he := &httpError{http.StatusInternalServerError, err.Error()} // unless err is one
	errors.As(err, &he)
	switch he.code {
	case http.StatusInternalServerError:
		s.cfg.Log.Errorf("join request from %s failed: %s", r.RemoteAddr, he.msg)
	case http.StatusServiceUnavailable:
		s.cfg.Log.Infof("join request from %s deferred: %s", r.RemoteAddr, he.msg)
	default:
		s.cfg.Log.Warnf("join request from %s refused: %s", r.RemoteAddr, he.msg)
	}
	http.Error(w, he.msg, he.code)
}

// authenticate checks a bearer token, the main secret or a bootstrap token,
// and says which it was, for the log.
func (s *Server) authenticate(ctx context.Context, header string) (string, error) {
	scheme, secret, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return "", rejected("no bearer token in the Authorization header")
	}
	if id, tokenSecret, ok := splitBootstrap(secret); ok {
		return "bootstrap token " + id, s.checkBootstrap(ctx, id, tokenSecret)
	}
	// Comparing digests keeps the time independent of the length, too.
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) != 1 {
		return "", unknownToken
	}
	return "the server token", nil
}

func (s *Server) checkBootstrap(ctx context.Context, id, tokenSecret string) error {
	name := bootstrapapi.BootstrapTokenSecretPrefix + id
	sec, err := s.cfg.Client.CoreV1().Secrets(tokenNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return unknownToken
	}
	if err != nil {
		return internal("reading bootstrap token %s: %v", id, err)
	}
	data := sec.Data
	// The secret is compared before anything else about the token is told.
	if sec.Type != bootstrapapi.SecretTypeBootstrapToken || sec.DeletionTimestamp != nil ||
		string(data[bootstrapapi.BootstrapTokenIDKey]) != id ||
		subtle.ConstantTimeCompare(data[bootstrapapi.BootstrapTokenSecretKey], []byte(tokenSecret)) != 1 {
		return unknownToken
	}
	if string(data[bootstrapapi.BootstrapTokenUsageAuthentication]) != "true" {
		return rejected("bootstrap token %s is not for authentication (its %s is not \"true\")", id, bootstrapapi.BootstrapTokenUsageAuthentication)
	}
	if exp := string(data[bootstrapapi.BootstrapTokenExpirationKey]); exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return rejected("bootstrap token %s has an unreadable expiration %q; create a new token", id, exp)
		}
		if !time.Now().Before(t) {
			return rejected("bootstrap token %s expired at %s; create a new token", id, t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// maxNodeNameLen keeps the node password record's name within the 253
// characters of a Kubernetes object name.
const maxNodeNameLen = validation.DNS1123SubdomainMaxLength - len(passwordSuffix)

func (s *Server) decodeNodeRequest(w http.ResponseWriter, r *http.Request) (NodeRequest, error) {
	var req NodeRequest
	body := http.MaxBytesReader(w, r.Body, maxRequestBytes)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, badRequest("bad join request: the body is empty; send a JSON node request")
		}
		return req, badRequest("bad join request: %v", err)
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		return req, badRequest("invalid node name %q: use lowercase letters, digits, '-' and '.' (--node-name)", req.NodeName)
	}
	if len(req.NodeName) > maxNodeNameLen {
		return req, badRequest("node name %q is too long: use at most %d characters (--node-name)", req.NodeName, maxNodeNameLen)
	}
	if slices.ContainsFunc(s.cfg.ReservedNames, func(n string) bool { return strings.EqualFold(n, req.NodeName) }) {
		return req, &httpError{http.StatusForbidden, fmt.Sprintf(
			"node name %s is the server's (its own node, or a name of the API server): pick another --node-name", req.NodeName)}
	}
	if req.NodePassword == "" {
		return req, badRequest("bad join request: the node password is empty")
	}
	if len(req.NodePassword) > maxPasswordLen {
		return req, badRequest("bad join request: the node password is longer than %d bytes", maxPasswordLen)
	}
	if len(req.Addresses) == 0 {
		return req, badRequest("bad join request: no node address; give the node's IP (--node-ip)")
	}
	for _, a := range req.Addresses {
		ip := net.ParseIP(a)
		if ip == nil {
			return req, badRequest("invalid node address %q: give an IP address (--node-ip)", a)
		}
		if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
			return req, badRequest("invalid node address %s: a node's address must reach it from other machines (--node-ip)", a)
		}
		if slices.ContainsFunc(s.cfg.ReservedIPs, ip.Equal) {
			return req, &httpError{http.StatusForbidden, fmt.Sprintf(
				"node address %s is the server's: give the node's own address (--node-ip)", a)}
		}
	}
	return req, nil
}

// checkAddresses refuses an address another Node reports as its own: the
// kubelet certificate for it would let this node pass as that one.
func (s *Server) checkAddresses(ctx context.Context, req NodeRequest) error {
	nodes, err := s.cfg.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return internal("listing nodes: %v", err)
	}
	for _, n := range nodes.Items {
		if n.Name == req.NodeName {
			continue
		}
		for _, na := range n.Status.Addresses {
			if na.Type != corev1.NodeInternalIP && na.Type != corev1.NodeExternalIP {
				continue
			}
			if slices.Contains(req.Addresses, na.Address) {
				return &httpError{http.StatusForbidden, fmt.Sprintf(
					"node address %s is node %s's: give this node's own address (--node-ip), or delete node %s if its machine is gone", na.Address, n.Name, n.Name)}
			}
		}
	}
	return nil
}

// issue signs the node's client certificate and its kubelet's serving
// certificate, for its own name and addresses only.
func (s *Server) issue(ctx context.Context, req NodeRequest) (*NodeBundle, error) {
	var ips []net.IP
	for _, a := range req.Addresses {
		ips = append(ips, net.ParseIP(a))
	}
	b := &NodeBundle{
		CABundle: string(s.cfg.CABundle),
		ClientCA: string(s.cfg.ClientCA.CertPEM),
		Cluster:  s.cfg.Cluster,
	}
	b.Cluster.ServerURLs = s.apiServers(ctx)
	client, serving := pki.NodeSpecs(req.NodeName, ips, s.cfg.CertValidity)
	now := time.Now()
	for _, c := range []struct {
		ca   *pki.CA
		spec pki.CertSpec
		out  *KeyPair
	}{{s.cfg.ClientCA, client, &b.Node}, {s.cfg.KubeletCA, serving, &b.Serving}} {
		cert, key, err := c.ca.Sign(c.spec, now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.spec.CommonName, err)
		}
		*c.out = KeyPair{Cert: string(cert), Key: string(key)}
	}
	return b, nil
}
