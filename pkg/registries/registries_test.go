package registries

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI writes a self-signed certificate and its key into dir and
// returns their paths; the certificate serves as a CA too.
func testPKI(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registry-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestParse: a file in k3s's format, every field, read in the file's order.
func TestParse(t *testing.T) {
	dir := t.TempDir()
	cert, key := testPKI(t, dir)
	c, err := Parse([]byte(`
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example.com:5000"
      - "http://10.0.0.1:5000/cache"
    rewrite:
      "^library/(.*)": "mirrored/$1"
      "^(.*)": "all/$1"
  "*":
    endpoint: ["https://everything.example.com"]
configs:
  "mirror.example.com:5000":
    auth:
      auth: dXNlcjpwYXNz
    tls:
      ca_file: ` + cert + `
      cert_file: ` + cert + `
      key_file: ` + key + `
  registry.example.com:
    auth: {username: u, password: "1234"}
    tls: {insecure_skip_verify: true}
  token.example.com:
    auth: {identitytoken: tok}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mirrors) != 2 || c.Mirrors[0].Registry != "docker.io" || c.Mirrors[1].Registry != "*" {
		t.Fatalf("mirrors %+v", c.Mirrors)
	}
	m := c.Mirrors[0]
	if len(m.Endpoints) != 2 || m.Endpoints[0].String() != "https://mirror.example.com:5000" || m.Endpoints[1].Path != "/cache" {
		t.Errorf("endpoints %v", m.Endpoints)
	}
	if len(m.Rewrites) != 2 || m.Rewrites[0].Pattern.String() != "^library/(.*)" || m.Rewrites[1].Replacement != "all/$1" {
		t.Errorf("rewrites out of the file's order: %+v", m.Rewrites)
	}
	a := c.Hosts["mirror.example.com:5000"].Auth
	if a == nil || a.Username != "user" || a.Password != "pass" {
		t.Errorf("auth from base64: %+v", a)
	}
	if tl := c.Hosts["mirror.example.com:5000"].TLS; tl == nil || tl.CAFile != cert || tl.KeyFile != key {
		t.Errorf("tls %+v", tl)
	}
	if h := c.Hosts["registry.example.com"]; h.Auth.Password != "1234" || !h.TLS.InsecureSkipVerify {
		t.Errorf("registry.example.com %+v %+v", h.Auth, h.TLS)
	}
	if h := c.Hosts["token.example.com"]; h.Auth.IdentityToken != "tok" {
		t.Errorf("identity token %+v", h.Auth)
	}
	for _, empty := range []string{"", "# nothing yet\n", "mirrors:\nconfigs:\n"} {
		if c, err := Parse([]byte(empty)); err != nil || len(c.Mirrors) != 0 || len(c.Hosts) != 0 {
			t.Errorf("Parse(%q) = %+v, %v", empty, c, err)
		}
	}
}

// TestParseErrors: each mistake is one message naming the key.
func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	cert, _ := testPKI(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, c := range []struct{ yaml, want string }{
		{"mirrors:\n  docker.io:\n    endpoints: [https://x]\n", `unknown key "mirrors.docker.io.endpoints" (line 3); known here: endpoint, rewrite`},
		{"mirror:\n  docker.io: {}\n", `unknown key "mirror" (line 1); known here: configs, mirrors`},
		{"mirrors: [docker.io]\n", `"mirrors" must be a map, not a list`},
		{"mirrors:\n  docker.io:\n    endpoint: https://x\n", `"mirrors.docker.io.endpoint" must be a list of URLs, not a single value`},
		{"mirrors:\n  docker.io:\n    endpoint: [mirror.example.com]\n", `give a URL starting with https:// or http://`},
		{"mirrors:\n  docker.io:\n    endpoint: [\"https://u:p@x\"]\n", `put credentials in configs."x".auth`},
		{"mirrors:\n  https://docker.io:\n    endpoint: []\n", `mirror "https://docker.io": give the registry's host[:port]`},
		{"mirrors:\n  docker.io:\n    endpoint: [\"https://x\"]\n    rewrite:\n      \"(\": y\n", `"mirrors.docker.io.rewrite.(": not a regular expression`},
		{"mirrors:\n  docker.io:\n    rewrite:\n      \"a\": b\n", `add mirrors.docker.io.endpoint`},
		{"mirrors:\n  docker.io: {}\n  docker.io: {}\n", `"mirrors.docker.io" is given twice (line 3)`},
		{"configs:\n  x:\n    auth: {user: a}\n", `unknown key "configs.x.auth.user" (line 3); known here: auth, identitytoken, password, username`},
		{"configs:\n  x:\n    auth: {username: a}\n", `"configs.x.auth" needs both username and password`},
		{"configs:\n  x:\n    auth: {auth: \"%%%\"}\n", `"configs.x.auth.auth" must be base64 of username:password`},
		{"configs:\n  x:\n    auth: {}\n", `"configs.x.auth" gives no credentials`},
		{"configs:\n  \"*\":\n    auth: {username: a, password: b}\n", `configs are per registry host`},
		{"configs:\n  x:\n    tls: {insecure_skip_verify: maybe}\n", `"configs.x.tls.insecure_skip_verify" must be true or false`},
		{"configs:\n  x:\n    tls: {ca_file: ca.pem}\n", `"configs.x.tls.ca_file": give an absolute path`},
		{"configs:\n  x:\n    tls: {ca_file: /nonexistent/ca.pem}\n", `"configs.x.tls.ca_file": open /nonexistent/ca.pem: no such file`},
		{"configs:\n  x:\n    tls: {ca_file: " + notPEM + "}\n", `holds no PEM certificate`},
		{"configs:\n  x:\n    tls: {key_file: " + cert + "}\n", `"configs.x.tls.key_file" needs configs.x.tls.cert_file too`},
		{"configs:\n  x:\n    tls: {cert_file: " + cert + ", key_file: " + notPEM + "}\n", `"configs.x.tls.cert_file": tls:`},
		{"configs:\n  x:\n    tls: {ca_file: [a]}\n", `"configs.x.tls.ca_file" must be a single value, not a list`},
		{"mirrors:\n  docker.io:\n    endpoint:\n    - [a]\n", `"mirrors.docker.io.endpoint[0]" must be a single value`},
		{"mirrors: {docker.io: {endpoint: [\"https://x\"]}\n", `not valid YAML: line 1`},
		{"- a\n", `the file must be a map with mirrors and configs, not a list`},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want %q", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q): message spans lines: %q", c.yaml, err)
		}
	}
}

// TestLoad: a missing default file is no configuration; a missing named
// one, or a bad one, is an error naming the file.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "registries.yaml")
	if c, err := Load(missing, false); c != nil || err != nil {
		t.Errorf("missing default file: %v, %v", c, err)
	}
	if _, err := Load(missing, true); err == nil || err.Error() != "registries.yaml "+missing+": no such file; check --private-registry" {
		t.Errorf("missing named file: %v", err)
	}
	os.WriteFile(missing, []byte("mirrors:\n  docker.io:\n    endpoints: []\n"), 0o600)
	if _, err := Load(missing, false); err == nil || !strings.HasPrefix(err.Error(), "registries.yaml "+missing+`: unknown key "mirrors.docker.io.endpoints"`) {
		t.Errorf("bad file: %v", err)
	}
	os.WriteFile(missing, []byte("mirrors:\n  docker.io:\n    endpoint: [\"https://m\"]\n"), 0o600)
	if c, err := Load(missing, false); err != nil || c.File != missing || len(c.Mirrors) != 1 {
		t.Errorf("good file: %+v, %v", c, err)
	}
}
