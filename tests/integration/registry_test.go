package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"golang.org/x/crypto/bcrypt"

	"github.com/kubox-io/kubox/pkg/pki"
	"github.com/kubox-io/kubox/tests/ocipush"
	"github.com/kubox-io/kubox/tests/testenv"
)

// TestPrivateRegistry: with registries.yaml (named in config.yaml), pods
// pull the test image from a registry with TLS from its own CA and basic
// auth, running in the test process: through a mirror of a registry
// that does not exist, through a rewrite of docker.io's library/x to
// test/x, and, where the file gives no credentials for the registry's
// other port, not at all, with the registry's refusal in the pod's events.
func TestPrivateRegistry(t *testing.T) {
	testenv.LockNodes(t)
	images := testImages(t)
	dir := t.TempDir()
	reg := startRegistry(t, dir)
	reg.push(t, filepath.Join(images, "echo.tar"), "test/x", "1")
	reg.push(t, filepath.Join(images, "echo.tar"), "test/listed", "1")

	regFile := filepath.Join(dir, "registries.yaml")
	os.WriteFile(regFile, []byte(fmt.Sprintf(`mirrors:
  mirror.invalid:
    endpoint: ["https://%[1]s"]
  docker.io:
    endpoint: ["https://%[1]s"]
    rewrite:
      "^library/(.*)": "test/$1"
  noauth.invalid:
    endpoint: ["https://%[2]s"]
  rewrite-noauth.invalid:
    endpoint: ["https://%[2]s"]
    rewrite:
      "^(.*)$": "test/$1"
configs:
  "%[1]s":
    auth: {username: kubox, password: registry-secret}
    tls: {ca_file: %[3]s}
  "%[2]s":
    tls: {ca_file: %[3]s}
`, reg.addrs[0], reg.addrs[1], reg.caFile)), 0o600)

	s := newNodeServer(t)
	os.WriteFile(s.ConfigFile, []byte(fmt.Sprintf("private-registry: %s\ndata-dir: %s\nrun-dir: %s\n", regFile, s.DataDir, s.RunDir)), 0o600)
	s.StartReady()
	waitNodeReady(t, s)

	// What kubox wrote for containerd: a hosts directory per registry, and
	// the credentials in containerd's own configuration, 0600.
	certsd := filepath.Join(s.DataDir, "agent", "etc", "containerd", "certs.d")
	for _, r := range []string{"mirror.invalid", "docker.io", "noauth.invalid", "rewrite-noauth.invalid"} {
		if _, err := os.Stat(filepath.Join(certsd, r, "hosts.toml")); err != nil {
			t.Errorf("no hosts.toml for %s: %v", r, err)
		}
	}
	cfgFile := filepath.Join(s.DataDir, "agent", "etc", "containerd", "config.toml")
	if st, err := os.Stat(cfgFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("containerd's configuration: %v, %v", st, err)
	} else if data, _ := os.ReadFile(cfgFile); !strings.Contains(string(data), fmt.Sprintf(`registry.configs."%s".auth]`, reg.addrs[0])) {
		t.Errorf("containerd's configuration lacks the credentials of %s", reg.addrs[0])
	}

	pods := map[string]string{
		"mirror":         "mirror.invalid/test/x:1",
		"rewrite":        "docker.io/library/x:1",
		"noauth":         "noauth.invalid/test/x:1",
		"rewrite-noauth": "rewrite-noauth.invalid/x:1",
	}
	for name, image := range pods {
		s.MustKubectl("run", name, "--image", image, "--restart", "Never", "--", "hello")
	}
	for _, name := range []string{"mirror", "rewrite"} {
		waitFor(t, "pod "+name+" to run "+pods[name], 2*time.Minute, func() (bool, string) {
			out, _ := s.Kubectl("get", "pod", name, "-o", "jsonpath={.status.phase} {.status.containerStatuses[*].state}")
			return strings.HasPrefix(out, "Succeeded"), out + "\n" + podEvents(s, name)
		})
		if out := s.MustKubectl("logs", name); !strings.Contains(out, "hello from "+name) {
			t.Errorf("pod %s printed %q", name, out)
		}
	}
	// Without credentials: containerd's basic-auth challenge goes
	// unanswered; through the rewrite proxy, the registry's 401 is shown.
	for name, want := range map[string]string{"noauth": "no basic auth credentials", "rewrite-noauth": "401 Unauthorized"} {
		var failed string
		waitFor(t, "pod "+name+"'s pull to fail", 2*time.Minute, func() (bool, string) {
			ev := podEvents(s, name)
			for _, line := range strings.Split(ev, "\n") {
				if strings.Contains(line, "Failed to pull image") && strings.Contains(line, want) {
					failed = line
				}
			}
			return failed != "", ev
		})
		t.Logf("pod %s: %s", name, failed)
	}
	if log := s.tail(5000); !strings.Contains(log, "serving the mirrors with rewrites on 127.0.0.1:") {
		t.Errorf("the server's log does not show the registry proxy")
	}
	// The proxy pulls with the node's credentials: it answers only
	// containerd, which has its secret from hosts.toml, and the secret is
	// not in the pod's events.
	hosts, _ := os.ReadFile(filepath.Join(certsd, "docker.io", "hosts.toml"))
	m := regexp.MustCompile(`(?s)\[host\."(http://127\.0\.0\.1:\d+/\d+)"\].*?"X-Kubox-Registry-Proxy" = "(\w+)"`).FindSubmatch(hosts)
	if m == nil {
		t.Fatalf("docker.io's hosts.toml does not point at the proxy:\n%s", hosts)
	}
	if resp, err := http.Get(string(m[1]) + "/v2/library/x/manifests/1"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the proxy without its secret: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if ev := podEvents(s, "rewrite-noauth"); strings.Contains(ev, string(m[2])) {
		t.Errorf("the proxy's secret is in the pod's events:\n%s", ev)
	}
	if got := reg.requests(); !strings.Contains(got, "/v2/test/x/manifests/1") || strings.Contains(got, "/v2/library/x/") {
		t.Errorf("the registry saw:\n%s", got)
	}

	// An image list in agent/images is pulled, with the mirror's
	// credentials, and pinned.
	listed := "mirror.invalid/test/listed"
	os.WriteFile(filepath.Join(s.DataDir, "agent", "images", "extra.txt"), []byte("# pulled once\n"+listed+":1\n"), 0o644)
	waitFor(t, listed+" pulled from the list", 2*time.Minute, func() (bool, string) {
		return strings.Contains(s.tail(3000), "pulled "+listed+":1"), ""
	})
	out, err := run(s.bin, []string{"crictl", "images", "--pinned"}, []string{"KUBOX_CONFIG_FILE=" + s.ConfigFile})
	if err != nil {
		t.Fatalf("kubox crictl images --pinned: %v\n%s", err, out)
	}
	found := false
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == listed {
			found = true
			if f[len(f)-1] != "true" {
				t.Errorf("%s is not pinned:\n%s", listed, out)
			}
		}
	}
	if !found {
		t.Errorf("kubox crictl images does not list %s:\n%s", listed, out)
	}
}

// podEvents are the messages of a pod's events, one a line.
func podEvents(s *server, pod string) string {
	out, _ := s.Kubectl("get", "events", "--field-selector", "involvedObject.name="+pod, "-o", `jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}`)
	return out
}

// testRegistry is a distribution registry in the test process: in-memory
// storage, htpasswd basic auth, TLS from a CA of the test's own, served on
// two loopback ports.
type testRegistry struct {
	addrs  []string // host:port
	caFile string
	client *http.Client

	mu   sync.Mutex
	seen []string
}

func (r *testRegistry) requests() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.seen, "\n")
}

func startRegistry(t *testing.T, dir string) *testRegistry {
	t.Helper()
	caFile, serving, pool := testRegistryPKI(t, dir)
	r := &testRegistry{caFile: caFile}
	hash, err := bcrypt.GenerateFromPassword([]byte("registry-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("kubox:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{"inmemory": configuration.Parameters{}},
		Auth:    configuration.Auth{"htpasswd": configuration.Parameters{"realm": "kubox-test", "path": htpasswd}},
	}
	cfg.HTTP.Secret = "kubox-test-registry"
	app := handlers.NewApp(context.Background(), cfg)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.seen = append(r.seen, req.Method+" "+req.URL.Path)
			r.mu.Unlock()
			app.ServeHTTP(w, req)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{serving}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.addrs = append(r.addrs, ln.Addr().String())
		go srv.ServeTLS(ln, "", "")
	}
	t.Cleanup(func() {
		srv.Close()
		app.Shutdown()
	})
	r.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return r
}

// testRegistryPKI makes a CA (its certificate in caFile) and a serving
// certificate for 127.0.0.1 with kubox's own PKI code.
func testRegistryPKI(t *testing.T, dir string) (caFile string, serving tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	caFile = filepath.Join(dir, "registry-ca.pem")
	ca, err := pki.LoadOrCreateCA(caFile, filepath.Join(dir, "registry-ca.key"), "kubox test registry CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Sign(pki.CertSpec{CommonName: "127.0.0.1", SANs: pki.SANs{IPs: []net.IP{net.ParseIP("127.0.0.1")}}, Server: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if serving, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return caFile, serving, pool
}

// push uploads the one image of an OCI layout archive as repo:tag.
func (r *testRegistry) push(t *testing.T, archive, repo, tag string) {
	t.Helper()
	a, err := ocipush.Read(archive)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Images) != 1 {
		t.Fatalf("%s holds %d images, want 1", archive, len(a.Images))
	}
	reg := &ocipush.Registry{Base: "https://" + r.addrs[0], Client: r.client,
		Authorize: func(req *http.Request) { req.SetBasicAuth("kubox", "registry-secret") }}
	if err := reg.Push(a, a.Images[0], repo, tag); err != nil {
		t.Fatal(err)
	}
}
