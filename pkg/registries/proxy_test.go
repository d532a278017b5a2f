package registries

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeRegistry serves test/x's manifest and a blob (redirected to storage)
// behind basic auth or a bearer token service, and records the paths
// it was asked for.
type fakeRegistry struct {
	srv         *httptest.Server
	bearer      bool
	tokens      atomic.Int32 // tokens handed out
	lastRefresh string       // refresh token of the last token POST
	paths       []string
}

func newFakeRegistry(t *testing.T, bearer bool) *fakeRegistry {
	f := &fakeRegistry{bearer: bearer}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.ParseForm()
			f.lastRefresh = r.PostForm.Get("refresh_token")
			if f.lastRefresh != "id-token" || r.PostForm.Get("scope") != "repository:test/x:pull" {
				http.Error(w, "bad grant", http.StatusUnauthorized)
				return
			}
		} else if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" || r.URL.Query().Get("scope") != "repository:test/x:pull" || r.URL.Query().Get("service") != "fake" {
			http.Error(w, "bad credentials or scope", http.StatusUnauthorized)
			return
		}
		f.tokens.Add(1)
		fmt.Fprint(w, `{"access_token": "tok-test-x", "expires_in": 300}`)
	})
	// Blob storage on another host, as a cloud bucket would be.
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "storage takes no registry credentials", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "blob bytes")
	}))
	t.Cleanup(storage.Close)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		f.paths = append(f.paths, r.URL.RequestURI())
		if r.Header.Get(SecretHeader) != "" {
			http.Error(w, "the proxy's secret leaked", http.StatusBadRequest)
			return
		}
		authorized := false
		if f.bearer {
			authorized = r.Header.Get("Authorization") == "Bearer tok-test-x"
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake"`, f.srv.URL))
		} else {
			u, p, ok := r.BasicAuth()
			authorized = ok && u == "u" && p == "p"
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		}
		if !authorized {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		w.Header().Del("WWW-Authenticate")
		switch r.URL.Path {
		case "/v2/test/x/manifests/1":
			w.Header().Set("Docker-Content-Digest", "sha256:abc")
			fmt.Fprint(w, "manifest of test/x")
		case "/v2/test/x/blobs/sha256:def":
			http.Redirect(w, r, storage.URL+"/def", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// pullFunc sends a request to a running proxy, as containerd would (with
// an Authorization header of its own, which the proxy must drop).
type pullFunc func(method, path string) (*http.Response, string)

// proxyFor starts the proxy for a mirror of docker.io at f, with the
// configs entry extra (YAML under the host's key, after its tls).
func proxyFor(t *testing.T, f *fakeRegistry, extra string) pullFunc {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600)
	host := strings.TrimPrefix(f.srv.URL, "https://")
	c, err := Parse([]byte(fmt.Sprintf(`
mirrors:
  docker.io:
    endpoint: ["%s"]
    rewrite:
      "^library/(.*)": "test/$1"
configs:
  "%s":
    tls: {ca_file: %s}
%s`, f.srv.URL, host, ca, extra)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	send := func(secret string) pullFunc {
		return func(method, path string) (*http.Response, string) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			req.Header.Set("Authorization", "Bearer from-containerd")
			req.Header.Set(SecretHeader, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp, string(body)
		}
	}
	if resp, _ := send("guess")(http.MethodGet, "/0/v2/library/x/manifests/1"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request without the secret: %s", resp.Status)
	}
	return send(p.Secret())
}

// TestProxyBasic: the repository name is rewritten, basic auth is
// answered with the configured credentials, redirects are followed
// without them, and only pulls pass.
func TestProxyBasic(t *testing.T) {
	f := newFakeRegistry(t, false)
	p := proxyFor(t, f, "    auth: {username: u, password: p}\n")
	resp, body := p(http.MethodGet, "/0/v2/library/x/manifests/1?ns=docker.io")
	if resp.StatusCode != http.StatusOK || body != "manifest of test/x" || resp.Header.Get("Docker-Content-Digest") != "sha256:abc" {
		t.Fatalf("manifest: %s %q %v", resp.Status, body, resp.Header)
	}
	if f.paths[0] != "/v2/test/x/manifests/1?ns=docker.io" {
		t.Errorf("the registry was asked for %v", f.paths)
	}
	if resp, _ := p(http.MethodHead, "/0/v2/library/x/manifests/1"); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD: %s", resp.Status)
	}
	if resp, body := p(http.MethodGet, "/0/v2/library/x/blobs/sha256:def"); resp.StatusCode != http.StatusOK || body != "blob bytes" {
		t.Errorf("blob: %s %q", resp.Status, body)
	}
	if resp, _ := p(http.MethodGet, "/0/v2/other/y/manifests/1"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a name no rule matches goes unchanged: %s", resp.Status)
	}
	if f.paths[len(f.paths)-1] != "/v2/other/y/manifests/1" {
		t.Errorf("last path %s", f.paths[len(f.paths)-1])
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPut, "/0/v2/library/x/manifests/1", http.StatusMethodNotAllowed},
		{http.MethodGet, "/1/v2/library/x/manifests/1", http.StatusNotFound},
		{http.MethodGet, "/zero/v2/library/x/manifests/1", http.StatusNotFound},
		{http.MethodGet, "/0/v2/_catalog", http.StatusNotFound},
	} {
		if resp, _ := p(c.method, c.path); resp.StatusCode != c.want {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, resp.Status, c.want)
		}
	}
}

// TestProxyUnauthorized: without credentials the registry's 401 reaches
// containerd without its challenge, so that containerd reports it as is.
func TestProxyUnauthorized(t *testing.T) {
	f := newFakeRegistry(t, false)
	p := proxyFor(t, f, "")
	resp, _ := p(http.MethodGet, "/0/v2/library/x/manifests/1")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("%s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	// Wrong credentials: one try, then the 401.
	f2 := newFakeRegistry(t, false)
	p2 := proxyFor(t, f2, "    auth: {username: u, password: wrong}\n")
	if resp, _ := p2(http.MethodGet, "/0/v2/library/x/manifests/1"); resp.StatusCode != http.StatusUnauthorized || len(f2.paths) != 2 {
		t.Errorf("wrong password: %s after %d requests", resp.Status, len(f2.paths))
	}
}

// TestProxyBearer: a token for the rewritten repository's scope, fetched
// with the credentials once and reused.
func TestProxyBearer(t *testing.T) {
	f := newFakeRegistry(t, true)
	p := proxyFor(t, f, "    auth: {username: u, password: p}\n")
	for range 2 {
		if resp, body := p(http.MethodGet, "/0/v2/library/x/manifests/1"); resp.StatusCode != http.StatusOK || body != "manifest of test/x" {
			t.Fatalf("%s %q", resp.Status, body)
		}
	}
	if n := f.tokens.Load(); n != 1 {
		t.Errorf("%d tokens fetched, want 1", n)
	}
	// An identity token is exchanged as an OAuth2 refresh token.
	f2 := newFakeRegistry(t, true)
	p2 := proxyFor(t, f2, "    auth: {identitytoken: id-token}\n")
	if resp, body := p2(http.MethodGet, "/0/v2/library/x/manifests/1"); resp.StatusCode != http.StatusOK || f2.lastRefresh != "id-token" {
		t.Errorf("identity token: %s %q, refresh token %q", resp.Status, body, f2.lastRefresh)
	}
}

func TestParseChallenge(t *testing.T) {
	scheme, params := parseChallenge(`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push", error=invalid_token`)
	if scheme != "Bearer" || params["realm"] != "https://auth.example.com/token" || params["scope"] != "repository:a/b:pull,push" || params["error"] != "invalid_token" {
		t.Errorf("%s %v", scheme, params)
	}
	if scheme, params := parseChallenge(`Basic realm="a \"quoted\" realm"`); scheme != "Basic" || params["realm"] != `a "quoted" realm` {
		t.Errorf("%s %v", scheme, params)
	}
}
