package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubox-io/kubox/pkg/pki"
	"github.com/kubox-io/kubox/tests/testenv"
)

const rotateCAPod = `apiVersion: v1
kind: Pod
metadata: {name: rotate, namespace: default}
spec:
  nodeName: kbxt-agent
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [serve, --port, "8080"]
`

// TestRotateCA: `kubox certificate rotate-ca` with new CAs cross-signed by
// the current ones, then a server restart, keeps a joined agent Ready
// throughout; the API server reaches the agent's kubelet before and after;
// the API serves a certificate of the new server CA; and once the agent
// has renewed, its certificates are the new CAs' and it is still Ready.
func TestRotateCA(t *testing.T) {
	images := testImages(t)
	testenv.LockNodes(t)
	net := newTestNet(t)
	sNS, sIP := net.addNamespace(1)
	aNS, aIP := net.addNamespace(2)
	srv := newNetNode(t, "server", sNS, sIP)
	ag := newNetNode(t, "agent", aNS, aIP)
	ag.airGapImage(filepath.Join(images, "echo.tar"))

	kubeconfig := filepath.Join(srv.Dir, "kubeconfig.yaml")
	kubectl := func(args ...string) (string, error) {
		return srv.exec(append([]string{srv.bin, "kubectl", "--kubeconfig", kubeconfig, "--request-timeout", "10s"}, args...)...)
	}
	nodesReady := func(what string) {
		t.Helper()
		waitFor(t, what, 3*time.Minute, func() (bool, string) {
			out, err := kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
			return err == nil && strings.Contains(out, "kbxt-server=True") && strings.Contains(out, "kbxt-agent=True"), out
		})
	}
	// The API server reaches the agent's kubelet: logs and exec.
	reachesKubelet := func(when string) {
		t.Helper()
		waitFor(t, "kubectl logs and exec of the agent's pod "+when, time.Minute, func() (bool, string) {
			logs, err := kubectl("logs", "rotate", "--tail", "1")
			if err != nil {
				return false, "logs: " + logs
			}
			out, err := kubectl("exec", "rotate", "--", "/echo", "get", "http://127.0.0.1:8080/healthz")
			return err == nil, "exec: " + out
		})
	}

	serverArgs := []string{"server", "--config", srv.emptyCfg, "--data-dir", srv.DataDir, "--run-dir", srv.RunDir,
		"--write-kubeconfig", kubeconfig, "--node-name", "kbxt-server", "--node-ip", sIP, "--advertise-address", sIP,
		"--flannel-iface", "eth0", "--resolv-conf", srv.resolv, "--disable", "metrics-server",
		// The agent renews within a minute and a half, so that the test
		// sees it take the new CAs.
		"--node-cert-validity", nodeCertValidity.String()}
	start := time.Now()
	srv.Start(serverArgs...)
	waitFor(t, "the server's API", 3*time.Minute, func() (bool, string) {
		out, err := kubectl("get", "--raw", "/readyz")
		return err == nil, out
	})
	tokenData, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	ag.Start("agent", "--config", ag.emptyCfg, "--server", "https://"+sIP+":6443", "--token", strings.TrimSpace(string(tokenData)),
		"--data-dir", ag.DataDir, "--run-dir", ag.RunDir, "--node-name", "kbxt-agent", "--node-ip", aIP, "--flannel-iface", "eth0", "--resolv-conf", ag.resolv)
	nodesReady("both nodes Ready")
	t.Logf("both nodes Ready %.1fs after start", time.Since(start).Seconds())
	manifest := filepath.Join(srv.Dir, "rotate.yaml")
	os.WriteFile(manifest, []byte(rotateCAPod), 0o644)
	if out, err := kubectl("apply", "-f", manifest); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	if out, err := kubectl("wait", "--for=condition=Ready", "pod/rotate", "--timeout=120s"); err != nil {
		t.Fatalf("the agent's pod: %v\n%s", err, out)
	}
	reachesKubelet("before the rotation")

	// Watch the agent's node from now on: Ready, or the API down while
	// the server restarts; never NotReady.
	var mu sync.Mutex
	var notReady []string
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			out, err := kubectl("get", "node", "kbxt-agent", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if err == nil && out != "True" {
				mu.Lock()
				notReady = append(notReady, time.Now().Format("15:04:05")+" "+out)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	stopWatching := func() []string {
		close(stop)
		<-watched
		mu.Lock()
		defer mu.Unlock()
		return notReady
	}
	defer func() {
		select {
		case <-stop:
		default:
			stopWatching()
		}
	}()

	// New CAs, each cross-signed by the key of the CA it replaces.
	tlsDir := filepath.Join(srv.DataDir, "server", "tls")
	old, err := pki.LoadCAs(pki.ControlPlaneFiles(tlsDir))
	if err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(srv.Dir, "new-cas")
	os.MkdirAll(newDir, 0o700)
	newCAs := map[string]*x509.Certificate{}
	for i, name := range []string{"server-ca", "client-ca", "request-header-ca", "kubelet-ca"} {
		certPEM, keyPEM, err := pki.NewCrossSignedCA(old[i], "kbxt-new-"+name, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(newDir, name+".crt"), certPEM, 0o600)
		os.WriteFile(filepath.Join(newDir, name+".key"), keyPEM, 0o600)
		newCAs[name] = parseCertPEM(t, string(certPEM))
	}
	rotated := time.Now()
	out, err := run(srv.bin, []string{"certificate", "rotate-ca", "--config", srv.emptyCfg, "--data-dir", srv.DataDir,
		"--write-kubeconfig", kubeconfig, "--path", newDir}, nil)
	if err != nil {
		t.Fatalf("kubox certificate rotate-ca: %v\n%s", err, out)
	}
	t.Logf("rotate-ca:\n%s", out)
	if last := lastLine(out); !strings.Contains(last, "restart kubox on this server to finish") {
		t.Errorf("rotate-ca's last line %q does not say to restart the server", last)
	}

	// The running server serves its new certificate, and clients that
	// trust the old CA alone still verify it, through the cross-signature.
	waitFor(t, "the API serving a certificate of the new server CA", 2*time.Minute, func() (bool, string) {
		leaf, err := servingCert(sIP+":6443", nil)
		if err != nil {
			return false, err.Error()
		}
		return leaf.CheckSignatureFrom(newCAs["server-ca"]) == nil, "issued by " + leaf.Issuer.CommonName
	})
	if _, err := servingCert(sIP+":6443", old[0].Cert); err != nil {
		t.Errorf("a client that trusts only the old server CA: %v", err)
	}
	reachesKubelet("after the rotation, before the restart")

	srv.Stop()
	srv.Start(serverArgs...)
	nodesReady("both nodes Ready after the server restarted")
	t.Logf("server back %.1fs after rotate-ca", time.Since(rotated).Seconds())
	if leaf, err := servingCert(sIP+":6443", old[0].Cert); err != nil || leaf.CheckSignatureFrom(newCAs["server-ca"]) != nil {
		t.Errorf("after the restart, the API's serving certificate (issuer %v) against the old server CA: %v", leaf, err)
	}
	reachesKubelet("after the server restarted")

	// The agent renews with the restarted server and takes the new CAs.
	agentTLS := filepath.Join(ag.DataDir, "agent", "tls")
	waitFor(t, "the agent's certificates issued by the new CAs", 3*time.Minute, func() (bool, string) {
		cred, err := pki.ReadCredential(filepath.Join(agentTLS, "client-node.pem"))
		if err != nil {
			return false, err.Error()
		}
		serving := readFirstCert(filepath.Join(agentTLS, "serving-kubelet.crt"))
		ok := cred.Leaf.CheckSignatureFrom(newCAs["client-ca"]) == nil && serving != nil && serving.CheckSignatureFrom(newCAs["kubelet-ca"]) == nil
		return ok, "client certificate issued by " + cred.Leaf.Issuer.CommonName
	})
	t.Logf("agent renewed with the new CAs %.1fs after rotate-ca", time.Since(rotated).Seconds())
	if c := readFirstCert(filepath.Join(agentTLS, "server-ca.crt")); c == nil || !c.Equal(newCAs["server-ca"]) {
		t.Error("the agent's server-ca.crt does not start with the new server CA")
	}
	// The agent goes on with its new certificates: a heartbeat after the
	// renewal, and the API server reaches its kubelet's new serving
	// certificate.
	renewedAt := time.Now()
	waitFor(t, "the agent's node lease renewed with its new certificate", time.Minute, func() (bool, string) {
		out, _ := kubectl("get", "lease", "-n", "kube-node-lease", "kbxt-agent", "-o", "jsonpath={.spec.renewTime}")
		at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(out))
		return err == nil && at.After(renewedAt), out
	})
	reachesKubelet("after the agent renewed")
	if bad := stopWatching(); len(bad) > 0 {
		t.Errorf("the agent's node was not Ready during the rotation: %v", bad)
	}
	t.Logf("test took %.1fs", time.Since(start).Seconds())
}

// servingCert is the certificate the API at addr serves, verified against
// root alone (with the chain it sends) unless root is nil.
func servingCert(addr string, root *x509.Certificate) (*x509.Certificate, error) {
	conf := &tls.Config{InsecureSkipVerify: true}
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	chain := conn.ConnectionState().PeerCertificates
	if root != nil {
		opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool()}
		opts.Roots.AddCert(root)
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := chain[0].Verify(opts); err != nil {
			return chain[0], err
		}
	}
	return chain[0], nil
}

// readFirstCert is the first certificate of a PEM file, nil if there is none.
func readFirstCert(path string) *x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	c, _ := x509.ParseCertificate(block.Bytes)
	return c
}
