package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/pki"
)

// Addresses of nodes that exist only as credentials in TestNodeTrust: on a
// bridge (with no ports) the test makes after the server started, so that they are
// not the server's.
const (
	trustIface = "kbxtd0"
	addrA      = "10.198.0.3"
	addrB      = "10.198.0.1" // the stand-in for node B's kubelet listens here
)

// TestNodeTrust: a join token holder gets one node's identity and nothing
// more. The test joins as two nodes A and B through the server's join
// endpoint, as an agent would, and then acts as each with what it got.
func TestNodeTrust(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	ctx := context.Background()
	s := newServer(t)
	s.StartReady()
	serverURL := fmt.Sprintf("https://127.0.0.1:%d", s.Port)
	tokenData, err := os.ReadFile(filepath.Join(s.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenData))
	serverIP := strings.TrimSpace(s.MustKubectl("get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].addresses[0].ip}"))
	hostname, _ := os.Hostname()

	if out, err := run("ip", []string{"link", "add", trustIface, "type", "bridge"}, nil); err != nil {
		t.Fatalf("ip link add: %v\n%s", err, out)
	}
	t.Cleanup(func() { run("ip", []string{"link", "del", trustIface}, nil) })
	for _, args := range [][]string{{"addr", "add", addrB + "/24", "dev", trustIface}, {"addr", "add", addrA + "/24", "dev", trustIface}, {"link", "set", trustIface, "up"}} {
		if out, err := run("ip", args, nil); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// Until its node policies are in place the server defers new nodes;
	// they try again, as an agent does.
	joinAs := func(name, password, addr string) (*join.NodeBundle, error) {
		deadline := time.Now().Add(time.Minute)
		for {
			b, err := join.Join(ctx, serverURL, token, join.NodeRequest{NodeName: name, NodePassword: password, Addresses: []string{addr}}, join.JoinOptions{})
			if !errors.Is(err, join.ErrStarting) || time.Now().After(deadline) {
				return b, err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	refused := func(what, want, name, password, addr string) {
		t.Helper()
		if _, err := joinAs(name, password, addr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a refusal saying %q", what, err, want)
		}
	}

	// Certificates for the API's names and addresses, or for the server's
	// own node, are refused.
	refused("the API's service name", "is the server's", "kubernetes.default.svc", "pw", "10.198.0.9")
	refused("the server's host name", "is the server's", hostname, "pw", "10.198.0.9")
	refused("the server's address", "node address "+serverIP+" is the server's", "kbxt-x", "pw", serverIP)
	refused("a loopback address", "must reach it from other machines", "kbxt-x", "pw", "127.0.0.2")

	a, err := joinAs("kbxt-a", "password-a", addrA)
	if err != nil {
		t.Fatalf("join as kbxt-a: %v", err)
	}
	b, err := joinAs("kbxt-b", "password-b", addrB)
	if err != nil {
		t.Fatalf("join as kbxt-b: %v", err)
	}
	// Another machine asking for a taken name, or for a node's address.
	refused("kbxt-a's name with another password", "already registered by another machine", "kbxt-a", "password-x", "10.198.0.9")

	// B's serving certificate is no server certificate to clients of the
	// server CA; only the kubelet CA vouches for it, and for B alone.
	serving := parseCertPEM(t, b.Serving.Cert)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: poolOf(t, []byte(b.CABundle))}); err == nil {
		t.Error("node B's kubelet serving certificate verifies against the server CA bundle")
	}
	kubeletCA, err := os.ReadFile(filepath.Join(s.DataDir, "server", "tls", "kubelet-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serving.Verify(x509.VerifyOptions{Roots: poolOf(t, kubeletCA), DNSName: "kbxt-b"}); err != nil {
		t.Errorf("node B's serving certificate against the kubelet CA: %v", err)
	}
	if err := serving.VerifyHostname(serverIP); err == nil {
		t.Error("node B's serving certificate is valid for the server's address")
	}

	// Each node registers itself, as its kubelet would.
	ca, cb := nodeClient(t, serverURL, a), nodeClient(t, serverURL, b)
	kubeletB := startFakeKubelet(t, addrB, b)
	for _, n := range []struct {
		c          kubernetes.Interface
		name, addr string
		port       int32
	}{{ca, "kbxt-a", addrA, 10250}, {cb, "kbxt-b", addrB, kubeletB.port}} {
		if _, err := n.c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s registers itself: %v", n.name, err)
		}
		// The controllers may change the new node first (taints): report
		// the status on the latest version, as a kubelet does.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			node, err := n.c.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.addr}}
			node.Status.DaemonEndpoints.KubeletEndpoint.Port = n.port
			_, err = n.c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("%s reports its status: %v", n.name, err)
		}
	}
	refused("node B's address for a new node", "node address "+addrB+" is node kbxt-b's", "kbxt-c", "pw", addrB)

	// A cannot change B's annotations or status, nor B's volumes; its own
	// it can.
	annotate := []byte(`{"metadata":{"annotations":{"kubox.test/x":"y"}}}`)
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: err = %v, want 403 Forbidden", what, err)
		}
	}
	_, err = ca.CoreV1().Nodes().Patch(ctx, "kbxt-b", types.MergePatchType, annotate, metav1.PatchOptions{})
	forbidden("A annotates B", err)
	_, err = ca.CoreV1().Nodes().Patch(ctx, "kbxt-b", types.MergePatchType, []byte(`{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"10.198.0.3"}}}`), metav1.PatchOptions{}, "status")
	forbidden("A rewrites B's pod-network annotations", err)
	_, err = ca.CoreV1().Nodes().Patch(ctx, "kbxt-b", types.MergePatchType, []byte(`{"status":{"addresses":[{"type":"InternalIP","address":"10.198.0.3"}]}}`), metav1.PatchOptions{}, "status")
	forbidden("A changes B's status", err)
	if _, err := ca.CoreV1().Nodes().Patch(ctx, "kbxt-a", types.MergePatchType, annotate, metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("A annotates itself: %v", err)
	}
	if _, err := cb.CoreV1().PersistentVolumes().Create(ctx, localVolume("pv-b", "kbxt-b"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("B creates a volume bound to itself: %v", err)
	}
	forbidden("A deletes B's volume", ca.CoreV1().PersistentVolumes().Delete(ctx, "pv-b", metav1.DeleteOptions{}))
	_, err = ca.CoreV1().PersistentVolumes().Create(ctx, localVolume("pv-x", "kbxt-b"), metav1.CreateOptions{})
	forbidden("A creates a volume bound to B", err)
	if _, err := ca.CoreV1().PersistentVolumes().Create(ctx, localVolume("pv-a", "kbxt-a"), metav1.CreateOptions{}); err != nil {
		t.Errorf("A creates a volume bound to itself: %v", err)
	} else if err := ca.CoreV1().PersistentVolumes().Delete(ctx, "pv-a", metav1.DeleteOptions{}); err != nil {
		t.Errorf("A deletes its own volume: %v", err)
	}
	if _, err := s.Kubectl("get", "pv", "pv-b"); err != nil {
		t.Errorf("B's volume is gone: %v", err)
	}

	// The API server talks to B's kubelet only while it presents the
	// kubelet CA's certificate for B.
	proxy := []string{"get", "--raw", "/api/v1/nodes/kbxt-b/proxy/healthz"}
	if out, err := s.Kubectl(proxy...); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("the API server to B's kubelet: %v %q", err, out)
	}
	kubeletB.use(t, signedBy(t, s.DataDir, "server-ca", "kbxt-b", addrB))
	if out, err := s.Kubectl(proxy...); err == nil || !strings.Contains(out, "x509") {
		t.Errorf("the API server accepted a kubelet certificate from the server CA: %v %q", err, out)
	}

	// A renews with its own certificate, no token; A's name and identity
	// are unchanged by the refusals above.
	if _, err := join.Renew(ctx, serverURL, []byte(a.CABundle), pairOf(t, a.Node), join.NodeRequest{NodeName: "kbxt-a", NodePassword: "password-a", Addresses: []string{addrA}}, join.JoinOptions{}); err != nil {
		t.Errorf("A renews over mTLS: %v", err)
	}
	if _, err := join.Renew(ctx, serverURL, []byte(a.CABundle), pairOf(t, a.Node), join.NodeRequest{NodeName: "kbxt-b", NodePassword: "password-b", Addresses: []string{addrB}}, join.JoinOptions{}); err == nil {
		t.Error("A renewed B's certificates")
	}

	// An unknown token and a wrong secret get the same answer; a source
	// that keeps failing is told to wait.
	created, err := run(s.bin, []string{"token", "create", "--kubeconfig", s.Kubeconfig}, nil)
	if err != nil {
		t.Fatalf("kubox token create: %v\n%s", err, created)
	}
	hash, secret, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(created), "K1"), "::")
	id, _, _ := strings.Cut(secret, ".")
	tryToken := func(tok string) error {
		_, err := join.Join(ctx, serverURL, tok, join.NodeRequest{NodeName: "kbxt-z", NodePassword: "pw", Addresses: []string{"10.198.0.9"}}, join.JoinOptions{})
		return err
	}
	wrong := tryToken("K1" + hash + "::" + id + ".0000000000000000")
	unknown := tryToken("K1" + hash + "::zzzzzz.0000000000000000")
	if wrong == nil || unknown == nil || wrong.Error() != unknown.Error() {
		t.Errorf("a wrong secret and an unknown token are told apart:\n%v\n%v", wrong, unknown)
	}
	// The server allows 10 failures per source in a window of a minute
	// that starts at its first failure; the failures above opened one,
	// which may end while these run: 21 tries fill the next one.
	// The status line, not "429" alone: the server's port may hold it.
	tooMany := func(err error) bool { return err != nil && strings.Contains(err.Error(), "(429 Too Many Requests)") }
	var last error
	for i := 0; i < 21 && !tooMany(last); i++ {
		last = tryToken("K1" + hash + "::" + strings.Repeat("ab", 32))
	}
	if !tooMany(last) || !strings.Contains(last.Error(), "retry in") {
		t.Errorf("repeated wrong tokens: last err = %v, want 429 with a time to wait", last)
	}
	if err := tryToken(token); !tooMany(err) {
		t.Errorf("the right token right after: err = %v, want 429 until the window ends", err)
	}
}

func parseCertPEM(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func poolOf(t *testing.T, pemData []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate in the CA bundle")
	}
	return pool
}

func pairOf(t *testing.T, kp join.KeyPair) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(kp.Cert), []byte(kp.Key))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// nodeClient acts as the node the bundle was issued to.
func nodeClient(t *testing.T, serverURL string, b *join.NodeBundle) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: serverURL, TLSClientConfig: rest.TLSClientConfig{
		CAData: []byte(b.CABundle), CertData: []byte(b.Node.Cert), KeyData: []byte(b.Node.Key)}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func localVolume(name, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/kubox-test-" + name}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
}

// fakeKubelet stands in for node B's kubelet: an HTTPS /healthz on B's
// address, with whatever certificate the test gives it. What is under test
// is the API server's side of the connection.
type fakeKubelet struct {
	t    *testing.T
	addr string
	port int32
	srv  *http.Server
}

func startFakeKubelet(t *testing.T, addr string, b *join.NodeBundle) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{t: t, addr: net.JoinHostPort(addr, "0")}
	k.use(t, pairOf(t, b.Serving))
	t.Cleanup(func() { k.srv.Close() })
	return k
}

// use serves with pair from now on. The server is started anew, on the same
// port, so that no connection made with the last certificate lives on.
func (k *fakeKubelet) use(t *testing.T, pair tls.Certificate) {
	t.Helper()
	if k.srv != nil {
		k.srv.Close()
	}
	ln, err := net.Listen("tcp", k.addr)
	if err != nil {
		t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	k.port = int32(ln.Addr().(*net.TCPAddr).Port)
	k.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // the handshakes the API server refuses
	}
	go k.srv.ServeTLS(ln, "", "")
}

// signedBy signs a serving certificate for name and addr with one of the
// server's CAs, read from its data dir as an attacker with that CA would.
func signedBy(t *testing.T, dataDir, caName, name, addr string) tls.Certificate {
	t.Helper()
	dir := filepath.Join(dataDir, "server", "tls")
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, caName+".crt"), filepath.Join(dir, caName+".key"), "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Sign(pki.CertSpec{CommonName: name, Server: true, SANs: pki.SANs{DNSNames: []string{name}, IPs: []net.IP{net.ParseIP(addr)}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return pairOf(t, join.KeyPair{Cert: string(c), Key: string(k)})
}
