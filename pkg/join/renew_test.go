package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// failureLimit is the test servers' limit of failed attempts per minute.
const failureLimit = 5

func pairOf(t *testing.T, kp KeyPair) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(kp.Cert), []byte(kp.Key))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func TestRenew(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	req := nodeRequest("node-1", "pw-1")
	b, err := Join(ctx, ts.url, ts.token(), req, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cred := pairOf(t, b.Node)

	nb, err := Renew(ctx, ts.url, ts.caBundle, cred, req, JoinOptions{})
	if err != nil {
		t.Fatalf("renew with the node's own certificate: %v", err)
	}
	if nb.Node.Cert == b.Node.Cert || nb.Serving.Cert == b.Serving.Cert {
		t.Error("renewal returned the old certificates")
	}
	verify(t, nb.Node, ts.clientCA, x509.ExtKeyUsageClientAuth)

	refused := func(what string, cred tls.Certificate, req NodeRequest, want string) {
		t.Helper()
		_, err := Renew(ctx, ts.url, ts.caBundle, cred, req, JoinOptions{})
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a refusal saying %q", what, err, want)
		}
	}
	refused("another node's name", cred, nodeRequest("node-2", "pw-1"), "may renew only its own certificates")
	refused("a wrong node password", cred, nodeRequest("node-1", "other"), "already registered by another machine")
	other, err := pki.LoadOrCreateCA(filepath.Join(t.TempDir(), "ca.crt"), filepath.Join(t.TempDir(), "ca.key"), "other", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := other.Sign(pki.CertSpec{CommonName: "system:node:node-1", Organization: []string{"system:nodes"}, Client: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	refused("a certificate from another CA", pairOf(t, KeyPair{string(c), string(k)}), req, "not valid on this server")
	c, k, err = ts.clientCA.Sign(pki.CertSpec{CommonName: "system:kube-proxy", Client: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	refused("a client that is not a node", pairOf(t, KeyPair{string(c), string(k)}), req, "is not a node")
	refused("no client certificate", tls.Certificate{}, req, "no client certificate")

	if err := ts.client.CoreV1().Secrets("kube-system").Delete(ctx, "node-1.node-password.kubox", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	refused("a deleted password record", cred, req, "join again with a token")
}

func TestAddressOfAnotherNode(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-9"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.9"}}}}
	if _, err := ts.client.CoreV1().Nodes().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	req := nodeRequest("node-1", "pw")
	req.Addresses = []string{"10.0.0.9"}
	_, err := Join(ctx, ts.url, ts.token(), req, JoinOptions{})
	if err == nil || !strings.Contains(err.Error(), "node address 10.0.0.9 is node node-9's") {
		t.Fatalf("err = %v, want a refusal naming node-9", err)
	}
	// node-9 itself may keep its address.
	req = nodeRequest("node-9", "pw9")
	req.Addresses = []string{"10.0.0.9"}
	if _, err := Join(ctx, ts.url, ts.token(), req, JoinOptions{}); err == nil || !strings.Contains(err.Error(), "taken by an existing node") {
		t.Fatalf("node-9 without a record: err = %v", err)
	}
}

func TestFailedAttemptsThrottled(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	wrong := FullToken(strings.Repeat("e", 64), ts.caBundle)
	for i := 0; i < failureLimit; i++ {
		if _, err := Join(ctx, ts.url, wrong, nodeRequest("node-1", "pw"), JoinOptions{}); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("attempt %d: err = %v, want ErrUnauthorized", i+1, err)
		}
	}
	// Now even the right token waits, with a Retry-After.
	r, err := newNodeRequest(ctx, ts.url+nodePath, nodeRequest("node-1", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+ts.secret)
	resp, body, err := roundTrip(r, ts.url, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too many failed join attempts") {
		t.Fatalf("got %s (Retry-After %q) %q, want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"), body)
	}
}

func TestLimiterWindow(t *testing.T) {
	l := newLimiter(2, time.Minute)
	t0 := time.Unix(1000, 0)
	l.fail("a", t0)
	if _, ok := l.blocked("a", t0); !ok {
		t.Fatal("blocked after one failure")
	}
	l.fail("a", t0.Add(time.Second))
	if wait, ok := l.blocked("a", t0.Add(2*time.Second)); ok || wait != 58*time.Second {
		t.Fatalf("after two failures: wait %s, ok %v; want 58s, false", wait, ok)
	}
	if _, ok := l.blocked("b", t0); !ok {
		t.Error("another source is blocked")
	}
	if _, ok := l.blocked("a", t0.Add(time.Minute)); !ok {
		t.Error("still blocked after the window")
	}
}

func TestRenewer(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	req := nodeRequest("node-1", "pw")
	b, err := Join(ctx, ts.url, ts.token(), req, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := WriteBundle(dir, ts.url, b); err != nil {
		t.Fatal(err)
	}
	r := &Renewer{Dir: dir, ServerURL: ts.url, APIURL: ts.url, Request: req, RenewBefore: config.CertRenewBefore,
		Log: logging.New(os.Stderr, 0, false)}
	due, err := r.Due()
	if err != nil {
		t.Fatal(err)
	}
	// A year's certificate is due 120 days before it expires.
	if want := time.Now().Add(365*24*time.Hour - config.CertRenewBefore); due.Sub(want).Abs() > time.Minute {
		t.Errorf("due %s, want about %s", due, want)
	}
	if _, err := r.RenewNow(ctx); err != nil {
		t.Fatal(err)
	}
	cred, err := pki.ReadCredential(config.NodeCredentialsIn(dir).Credential)
	if err != nil {
		t.Fatal(err)
	}
	if string(cred.Certificate[0]) == string(pairOf(t, b.Node).Certificate[0]) {
		t.Error("the credential file still holds the first certificate")
	}
}

// TestRenewAfterCARotation: once `kubox certificate rotate-ca` replaced the
// client CA, a node still renews with the certificate the replaced CA
// signed, and gets one from the new CA that also verifies against the
// replaced one (through the cross-signature it carries).
func TestRenewAfterCARotation(t *testing.T) {
	ts := newTestServer(t)
	b, err := Join(context.Background(), ts.url, ts.token(), nodeRequest("node-1", "pw-1"), JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newCert, newKey, err := pki.NewCrossSignedCA(ts.clientCA, "new-client-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client-ca.crt"), filepath.Join(dir, "client-ca.key")
	os.WriteFile(certFile, append(newCert, ts.clientCA.CertPEM...), 0o600)
	os.WriteFile(keyFile, newKey, 0o600)
	rotated, err := pki.LoadOrCreateCA(certFile, keyFile, "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{CABundle: ts.caBundle, ClientCA: rotated, KubeletCA: ts.kubeletCA, Secret: ts.secret,
		Client: ts.client, Log: logging.New(io.Discard, 0, false)})
	if err != nil {
		t.Fatal(err)
	}
	old := pairOf(t, b.Node)
	leaf, _ := x509.ParseCertificate(old.Certificate[0])
	r := &http.Request{TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}}
	if name, err := s.nodeOfClient(r); err != nil || name != "node-1" {
		t.Fatalf("renewal with the replaced CA's certificate: %q, %v", name, err)
	}
	nb, err := s.issue(context.Background(), nodeRequest("node-1", "pw-1"))
	if err != nil {
		t.Fatal(err)
	}
	if nb.ClientCA != string(rotated.CertPEM) {
		t.Error("the bundle's client CA is not the rotated CA file")
	}
	verify(t, nb.Node, ts.clientCA, x509.ExtKeyUsageClientAuth) // the old root alone, with the chain sent
	verify(t, nb.Node, rotated, x509.ExtKeyUsageClientAuth)
	if issued := parseCert(t, nb.Node.Cert); issued.CheckSignatureFrom(rotated.Cert) != nil {
		t.Error("the renewed node certificate is not the new CA's")
	}
}
