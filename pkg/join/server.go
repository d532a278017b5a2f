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
	"net"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// FlannelUser is the identity of every node's flannel and local storage
// controller; the server's RBAC binds it (pkg/server FlannelUser).
const FlannelUser = "system:kubox-flannel"

// maxRequestBytes bounds a join request; a real one is a few hundred bytes.
const maxRequestBytes = 64 << 10

// ServerConfig is what a Server hands out and checks tokens against.
type ServerConfig struct {
	CABundle []byte  // server CA bundle PEM: verifies the API; its hash is in the token
	ClientCA *pki.CA // signs the node's client certificates
	ServerCA *pki.CA // signs the kubelet's serving certificate
	Secret   string  // the main secret (the bare content of <data-dir>/server/token)
	// Client reads bootstrap tokens, Nodes and node password records.
	Client  kubernetes.Interface
	Cluster ClusterConfig
	Log     *logging.Logger
}

// Server serves the join routes.
type Server struct {
	cfg       ServerConfig
	secretSum [sha256.Size]byte
	mux       *http.ServeMux
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.ClientCA == nil || cfg.ServerCA == nil:
		return nil, errors.New("join server: the client CA and the server CA are required")
	case cfg.Client == nil:
		return nil, errors.New("join server: a Kubernetes client is required")
	case cfg.Log == nil:
		return nil, errors.New("join server: a logger is required")
	case !hex64RE.MatchString(cfg.Secret):
		return nil, errors.New("join server: the main secret must be 64 hexadecimal characters")
	case !x509.NewCertPool().AppendCertsFromPEM(cfg.CABundle):
		return nil, errors.New("join server: the CA bundle holds no PEM certificate")
	}
	s := &Server{cfg: cfg, secretSum: sha256.Sum256([]byte(cfg.Secret)), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+cacertsPath, s.serveCACerts)
	s.mux.HandleFunc("POST "+nodePath, s.serveNode)
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

// serveCACerts needs no token: the agent checks what it gets against the
// hash in its token before it sends the secret anywhere.
func (s *Server) serveCACerts(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.cfg.CABundle)
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	who, err := s.authenticate(ctx, r.Header.Get("Authorization"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := decodeNodeRequest(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.claimNodeName(ctx, req.NodeName, req.NodePassword); err != nil {
		s.fail(w, r, err)
		return
	}
	bundle, err := s.issue(req)
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
	s.cfg.Log.Infof("node %s joined with %s", req.NodeName, who)
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
	if he.code == http.StatusInternalServerError {
		s.cfg.Log.Errorf("join request from %s failed: %s", r.RemoteAddr, he.msg)
	} else {
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
		return "", rejected("the secret is not this server's; copy the token again from the server's <data-dir>/server/token")
	}
	return "the server token", nil
}

func (s *Server) checkBootstrap(ctx context.Context, id, tokenSecret string) error {
	name := bootstrapapi.BootstrapTokenSecretPrefix + id
	sec, err := s.cfg.Client.CoreV1().Secrets(tokenNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return rejected("bootstrap token %s does not exist (deleted, or never created on this server)", id)
	}
	if err != nil {
		return internal("reading bootstrap token %s: %v", id, err)
	}
	data := sec.Data
	if sec.Type != bootstrapapi.SecretTypeBootstrapToken || sec.DeletionTimestamp != nil ||
		string(data[bootstrapapi.BootstrapTokenIDKey]) != id {
		return rejected("bootstrap token %s does not exist (kube-system/%s is not a valid bootstrap token)", id, name)
	}
	if subtle.ConstantTimeCompare(data[bootstrapapi.BootstrapTokenSecretKey], []byte(tokenSecret)) != 1 {
		return rejected("wrong secret for bootstrap token %s", id)
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

func decodeNodeRequest(w http.ResponseWriter, r *http.Request) (NodeRequest, error) {
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
		if net.ParseIP(a) == nil {
			return req, badRequest("invalid node address %q: give an IP address (--node-ip)", a)
		}
	}
	// The hostname only adds a name to the serving certificate; one that is
	// not a DNS name could never be used to reach the kubelet anyway.
	req.Hostname = strings.ToLower(req.Hostname)
	if len(validation.IsDNS1123Subdomain(req.Hostname)) > 0 {
		req.Hostname = ""
	}
	return req, nil
}

// issue signs the node's certificates.
func (s *Server) issue(req NodeRequest) (*NodeBundle, error) {
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, a := range req.Addresses {
		ips = append(ips, net.ParseIP(a))
	}
	b := &NodeBundle{
		CABundle: string(s.cfg.CABundle),
		ClientCA: string(s.cfg.ClientCA.CertPEM),
		Cluster:  s.cfg.Cluster,
	}
	now := time.Now()
	for _, c := range []struct {
		ca   *pki.CA
		spec pki.CertSpec
		out  *KeyPair
	}{
		{s.cfg.ClientCA, pki.CertSpec{CommonName: "system:node:" + req.NodeName, Organization: []string{"system:nodes"}, Client: true}, &b.Kubelet},
		{s.cfg.ServerCA, pki.CertSpec{CommonName: req.NodeName, Server: true,
			SANs: pki.SANs{DNSNames: []string{req.NodeName, req.Hostname, "localhost"}, IPs: ips}}, &b.Serving},
		{s.cfg.ClientCA, pki.CertSpec{CommonName: "system:kube-proxy", Client: true}, &b.KubeProxy},
		{s.cfg.ClientCA, pki.CertSpec{CommonName: FlannelUser, Client: true}, &b.Flannel},
	} {
		cert, key, err := c.ca.Sign(c.spec, now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.spec.CommonName, err)
		}
		*c.out = KeyPair{Cert: string(cert), Key: string(key)}
	}
	return b, nil
}
