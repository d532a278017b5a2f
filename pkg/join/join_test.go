package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// testServer is a join Server behind a real TLS listener whose certificate
// the server CA signed for 127.0.0.1 only, in front of a fallback handler.
type testServer struct {
	url       string
	secret    string
	caBundle  []byte
	serverCA  *pki.CA
	clientCA  *pki.CA
	kubeletCA *pki.CA
	client    *fake.Clientset
	cluster   ClusterConfig
	srv       *Server

	mu       sync.Mutex
	fallback []string // paths the fallback handler saw
	posts    int      // requests to the node route
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	serverCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "server-ca.crt"), filepath.Join(dir, "server-ca.key"), "test-server-ca", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "client-ca.crt"), filepath.Join(dir, "client-ca.key"), "test-client-ca", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	kubeletCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "kubelet-ca.crt"), filepath.Join(dir, "kubelet-ca.key"), "test-kubelet-ca", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := pki.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		secret: secret, caBundle: serverCA.CertPEM, serverCA: serverCA, clientCA: clientCA, kubeletCA: kubeletCA,
		client: fake.NewClientset(),
		cluster: ClusterConfig{ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10",
			ClusterDomain: "cluster.local", FlannelBackend: "vxlan", ServerURLs: []string{"https://10.0.0.1:6443"}},
	}
	ts.srv, err = NewServer(ServerConfig{
		CABundle: ts.caBundle, ClientCA: clientCA, KubeletCA: kubeletCA, Secret: secret,
		Client: ts.client, Cluster: ts.cluster, Log: logging.New(io.Discard, 0, false),
		ReservedNames: []string{"kubernetes.default.svc", "server-0"}, ReservedIPs: []net.IP{net.ParseIP("10.0.0.1")},
		FailureLimit: failureLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.fallback = append(ts.fallback, r.URL.Path)
		ts.mu.Unlock()
		io.WriteString(w, "fallback")
	})
	counted := ts.srv.Wrap(fallback)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == nodePath {
			ts.mu.Lock()
			ts.posts++
			ts.mu.Unlock()
		}
		counted.ServeHTTP(w, r)
	})

	certPEM, keyPEM, err := serverCA.Sign(pki.CertSpec{CommonName: "kube-apiserver", Server: true,
		SANs: pki.SANs{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(handler)
	// As the API server does: client certificates are asked for, and
	// checked by whoever reads them.
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequestClientCert}
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests fail on purpose
	hs.StartTLS()
	t.Cleanup(hs.Close)
	ts.url = hs.URL
	return ts
}

func (ts *testServer) token() string { return FullToken(ts.secret, ts.caBundle) }

func (ts *testServer) postCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.posts
}

func nodeRequest(name, password string) NodeRequest {
	return NodeRequest{NodeName: name, NodePassword: password, Addresses: []string{"10.0.0.7"}}
}

func parseCert(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatalf("no PEM in %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// verify checks that pair's certificate chains to ca for usage and matches
// pair's key, and returns it.
func verify(t *testing.T, pair KeyPair, ca *pki.CA, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	if _, err := tls.X509KeyPair([]byte(pair.Cert), []byte(pair.Key)); err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	cert := parseCert(t, pair.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	// The certificates after the first are its chain, as a peer gets it.
	inter := x509.NewCertPool()
	_, rest := pem.Decode([]byte(pair.Cert))
	inter.AppendCertsFromPEM(rest)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Fatalf("certificate %s does not verify against %s: %v", cert.Subject, ca.Cert.Subject, err)
	}
	return cert
}

func TestJoinWithFullToken(t *testing.T) {
	ts := newTestServer(t)
	b, err := Join(context.Background(), ts.url, ts.token(), nodeRequest("node-1", "pw-1"), JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.TrustedOnFirstUse {
		t.Error("TrustedOnFirstUse set for a token with a CA hash")
	}
	if b.CABundle != string(ts.caBundle) || b.ClientCA != string(ts.clientCA.CertPEM) {
		t.Error("bundle does not carry the server's CAs")
	}
	if b.Cluster.ClusterCIDR != ts.cluster.ClusterCIDR || !slices.Equal(b.Cluster.ServerURLs, ts.cluster.ServerURLs) {
		t.Errorf("cluster config = %+v, want %+v", b.Cluster, ts.cluster)
	}

	node := verify(t, b.Node, ts.clientCA, x509.ExtKeyUsageClientAuth)
	if node.Subject.CommonName != "system:node:node-1" || !slices.Equal(node.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("node subject = %s", node.Subject)
	}
	serving := verify(t, b.Serving, ts.kubeletCA, x509.ExtKeyUsageServerAuth)
	if !slices.Equal(serving.DNSNames, []string{"node-1"}) || len(serving.IPAddresses) != 1 || !serving.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
		t.Errorf("serving certificate for %v %v, want node-1 and 10.0.0.7 only", serving.DNSNames, serving.IPAddresses)
	}
	// Nothing a node gets passes as a server to clients of the server CA.
	roots := x509.NewCertPool()
	roots.AddCert(ts.serverCA.Cert)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Error("the kubelet serving certificate verifies against the server CA")
	}

	rec, err := ts.client.CoreV1().Secrets("kube-system").Get(context.Background(), "node-1.node-password.kubox", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no password record: %v", err)
	}
	if rec.Labels["kubox.io/node-password"] != "true" || strings.Contains(string(rec.Data["hash"]), "pw-1") {
		t.Errorf("password record = labels %v, data %q", rec.Labels, rec.Data)
	}
}

func TestWrapPassesOtherPaths(t *testing.T) {
	ts := newTestServer(t)
	h := ts.srv.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Fallback", r.Method+" "+r.URL.Path)
	}))
	for _, c := range []struct {
		method, path string
		fallback     bool
		code         int
	}{
		{"GET", "/api/v1/nodes", true, 200},
		{"POST", "/v1-kuboxish", true, 200},
		{"GET", "/v1-kubox/cacerts", false, 200},
		{"GET", "/v1-kubox/node", false, http.StatusMethodNotAllowed},
		{"GET", "/v1-kubox/unknown", false, http.StatusNotFound},
	} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(c.method, c.path, nil))
		if got := rr.Header().Get("X-Fallback") != ""; got != c.fallback || rr.Code != c.code {
			t.Errorf("%s %s: fallback %v, code %d; want %v, %d", c.method, c.path, got, rr.Code, c.fallback, c.code)
		}
	}

	// And through the real listener.
	req, err := http.NewRequest("GET", ts.url+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := roundTrip(req, ts.url, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !slices.Equal(ts.fallback, []string{"/healthz"}) {
		t.Errorf("fallback saw %v", ts.fallback)
	}
}

func TestJoinCAMismatch(t *testing.T) {
	ts := newTestServer(t)
	other := strings.Repeat("0", 64)
	_, err := Join(context.Background(), ts.url, "K1"+other+"::"+ts.secret, nodeRequest("node-1", "pw"), JoinOptions{})
	if !errors.Is(err, ErrCAMismatch) {
		t.Fatalf("err = %v, want ErrCAMismatch", err)
	}
	if !strings.Contains(err.Error(), "check --server and --token") {
		t.Errorf("error %q does not say what to check", err)
	}
	if n := ts.postCount(); n != 0 {
		t.Errorf("%d node requests were sent despite the CA mismatch", n)
	}
}

func TestJoinWrongSecret(t *testing.T) {
	ts := newTestServer(t)
	wrong := FullToken(strings.Repeat("e", 64), ts.caBundle)
	_, err := Join(context.Background(), ts.url, wrong, nodeRequest("node-1", "pw"), JoinOptions{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "token rejected: this server does not know the token") {
		t.Fatalf("err = %v, want ErrUnauthorized with the server's reason", err)
	}
	if !strings.HasPrefix(err.Error(), ts.url+": ") {
		t.Errorf("error %q does not name the server", err)
	}
}

func TestJoinBareSecretTrustsOnFirstUse(t *testing.T) {
	ts := newTestServer(t)
	b, err := Join(context.Background(), ts.url, ts.secret, nodeRequest("node-1", "pw"), JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !b.TrustedOnFirstUse {
		t.Error("TrustedOnFirstUse not set for a bare secret")
	}
	if FullToken(ts.secret, []byte(b.CABundle)) != ts.token() {
		t.Error("the bundle's CA does not give the server's full token")
	}
}

func TestJoinBootstrapToken(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	bt, err := CreateBootstrapToken(ctx, ts.client, time.Hour, "rack 4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(ctx, ts.url, FullToken(bt, ts.caBundle), nodeRequest("node-1", "pw"), JoinOptions{}); err != nil {
		t.Fatalf("join with a bootstrap token: %v", err)
	}
	id, _, _ := strings.Cut(bt, ".")

	// Wrong secret for an existing id.
	_, wrongSecret := Join(ctx, ts.url, FullToken(id+".0000000000000000", ts.caBundle), nodeRequest("node-2", "pw"), JoinOptions{})
	if !errors.Is(wrongSecret, ErrUnauthorized) || !strings.Contains(wrongSecret.Error(), "does not know the token") {
		t.Fatalf("wrong bootstrap secret: err = %v", wrongSecret)
	}
	// An unknown id gets the very same answer: nothing tells a guesser
	// which ids exist.
	_, unknown := Join(ctx, ts.url, FullToken("zzzzzz.0000000000000000", ts.caBundle), nodeRequest("node-2", "pw"), JoinOptions{})
	if unknown == nil || unknown.Error() != wrongSecret.Error() {
		t.Fatalf("unknown token id: err = %v, want the same as for a wrong secret (%v)", unknown, wrongSecret)
	}

	// Expired.
	secrets := ts.client.CoreV1().Secrets("kube-system")
	sec, err := secrets.Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Join(ctx, ts.url, FullToken(bt, ts.caBundle), nodeRequest("node-2", "pw"), JoinOptions{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired bootstrap token: err = %v", err)
	}

	// Deleted.
	if err := DeleteBootstrapToken(ctx, ts.client, id); err != nil {
		t.Fatal(err)
	}
	_, err = Join(ctx, ts.url, FullToken(bt, ts.caBundle), nodeRequest("node-2", "pw"), JoinOptions{})
	if !errors.Is(err, ErrUnauthorized) || err.Error() != wrongSecret.Error() {
		t.Fatalf("deleted bootstrap token: err = %v", err)
	}
}

func TestBootstrapTokenNotForAuthentication(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-sign00", Namespace: "kube-system"},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			bootstrapapi.BootstrapTokenIDKey:           []byte("sign00"),
			bootstrapapi.BootstrapTokenSecretKey:       []byte("0123456789abcdef"),
			bootstrapapi.BootstrapTokenUsageSigningKey: []byte("true"),
		},
	}
	if _, err := ts.client.CoreV1().Secrets("kube-system").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Join(ctx, ts.url, FullToken("sign00.0123456789abcdef", ts.caBundle), nodeRequest("node-1", "pw"), JoinOptions{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "not for authentication") {
		t.Fatalf("err = %v", err)
	}
}

func TestNodePassword(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	join := func(name, password string) error {
		_, err := Join(ctx, ts.url, ts.token(), nodeRequest(name, password), JoinOptions{})
		return err
	}
	if err := join("node-1", "first"); err != nil {
		t.Fatal(err)
	}
	err := join("node-1", "second")
	if !errors.Is(err, ErrNodeNameTaken) {
		t.Fatalf("other password: err = %v, want ErrNodeNameTaken", err)
	}
	want := "node name node-1 is already registered by another machine: pick another --node-name, or delete the node and the secret kube-system/node-1.node-password.kubox"
	if !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q does not end in %q", err, want)
	}
	if err := join("node-1", "first"); err != nil {
		t.Fatalf("rejoin with the same password: %v", err)
	}

	// Deleting the record frees the name.
	if err := ts.client.CoreV1().Secrets("kube-system").Delete(ctx, "node-1.node-password.kubox", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := join("node-1", "second"); err != nil {
		t.Fatalf("join after the record was deleted: %v", err)
	}

	// A Node with no record, such as one registered by hand, is not handed out.
	if _, err := ts.client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old-node"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := join("old-node", "pw"); !errors.Is(err, ErrNodeNameTaken) || !strings.Contains(err.Error(), "delete the node old-node") {
		t.Fatalf("name of a Node without a record: err = %v", err)
	}
}

func TestNodeRequestValidation(t *testing.T) {
	ts := newTestServer(t)
	h := ts.srv.Wrap(http.NotFoundHandler())
	for _, c := range []struct {
		name, auth, body string
		code             int
		msg              string
	}{
		{"no token", "", `{}`, 401, "token rejected: no bearer token"},
		{"basic auth", "Basic " + ts.secret, `{}`, 401, "token rejected: no bearer token"},
		{"empty body", "Bearer " + ts.secret, ``, 400, "the body is empty"},
		{"not JSON", "Bearer " + ts.secret, `nodeName=x`, 400, "bad join request"},
		{"bad name", "Bearer " + ts.secret, `{"nodeName":"Node_1","nodePassword":"p","addresses":["10.0.0.1"]}`, 400, `invalid node name "Node_1"`},
		{"long name", "Bearer " + ts.secret, `{"nodeName":"` + strings.Repeat("a", 240) + `","nodePassword":"p","addresses":["10.0.0.1"]}`, 400, "too long"},
		{"no password", "Bearer " + ts.secret, `{"nodeName":"n","addresses":["10.0.0.1"]}`, 400, "node password is empty"},
		{"long password", "Bearer " + ts.secret, `{"nodeName":"n","nodePassword":"` + strings.Repeat("p", 73) + `","addresses":["10.0.0.1"]}`, 400, "longer than 72 bytes"},
		{"no address", "Bearer " + ts.secret, `{"nodeName":"n","nodePassword":"p"}`, 400, "no node address"},
		{"bad address", "Bearer " + ts.secret, `{"nodeName":"n","nodePassword":"p","addresses":["box"]}`, 400, `invalid node address "box"`},
		{"loopback address", "Bearer " + ts.secret, `{"nodeName":"n","nodePassword":"p","addresses":["127.0.0.1"]}`, 400, `must reach it from other machines`},
		{"the server's address", "Bearer " + ts.secret, `{"nodeName":"n","nodePassword":"p","addresses":["10.0.0.1"]}`, 403, `node address 10.0.0.1 is the server's`},
		{"the API's name", "Bearer " + ts.secret, `{"nodeName":"kubernetes.default.svc","nodePassword":"p","addresses":["10.0.0.5"]}`, 403, `is the server's`},
		{"the server's node", "Bearer " + ts.secret, `{"nodeName":"server-0","nodePassword":"p","addresses":["10.0.0.5"]}`, 403, `is the server's`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", nodePath, strings.NewReader(c.body))
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, r)
			if rr.Code != c.code || !strings.Contains(rr.Body.String(), c.msg) {
				t.Fatalf("got %d %q, want %d with %q", rr.Code, rr.Body.String(), c.code, c.msg)
			}
		})
	}
}

func TestJoinClientErrors(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	req := nodeRequest("node-1", "pw")

	if _, err := Join(ctx, "10.0.0.1:6443", ts.token(), req, JoinOptions{}); err == nil || !strings.Contains(err.Error(), "invalid --server") {
		t.Errorf("URL without scheme: err = %v", err)
	}
	if _, err := Join(ctx, ts.url, "nonsense", req, JoinOptions{}); err == nil || !strings.Contains(err.Error(), "invalid token") {
		t.Errorf("bad token: err = %v", err)
	}

	// The certificate holds 127.0.0.1 only.
	byName := strings.Replace(ts.url, "127.0.0.1", "localhost", 1)
	if _, err := Join(ctx, byName, ts.token(), req, JoinOptions{}); err == nil || !strings.Contains(err.Error(), "--tls-san") {
		t.Errorf("name missing from the certificate: err = %v", err)
	}

	// Nothing listens on a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	_, err = Join(ctx, closed, ts.token(), req, JoinOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "cannot reach "+closed+": ") {
		t.Errorf("closed port: err = %v", err)
	}
}

// Until the server's node policies are in place, a new node is told to
// come back (503, ErrStarting) and gets nothing; then it joins.
func TestJoinWaitsForPolicies(t *testing.T) {
	ts := newTestServer(t)
	ready := make(chan struct{})
	ts.srv.cfg.Ready = ready
	_, err := Join(context.Background(), ts.url, ts.token(), nodeRequest("node-1", "pw-1"), JoinOptions{})
	if !errors.Is(err, ErrStarting) || !strings.Contains(err.Error(), "still starting") {
		t.Fatalf("join before the policies: err = %v, want ErrStarting saying the server is still starting", err)
	}
	if _, err := ts.client.CoreV1().Secrets("kube-system").Get(context.Background(), "node-1.node-password.kubox", metav1.GetOptions{}); err == nil {
		t.Error("a deferred join left a node password record")
	}
	close(ready)
	if _, err := Join(context.Background(), ts.url, ts.token(), nodeRequest("node-1", "pw-1"), JoinOptions{}); err != nil {
		t.Fatalf("join once the policies are in place: %v", err)
	}
}
