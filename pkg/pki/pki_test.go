package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

const renew = 120 * 24 * time.Hour

var (
	t0         = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	serviceIP  = net.ParseIP("10.43.0.1")
	caFileKeys = []string{"server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key", "request-header-ca.crt", "request-header-ca.key", "kubelet-ca.crt", "kubelet-ca.key", "service.key",
		"server-ca.nochain.crt", "client-ca.nochain.crt", "request-header-ca.nochain.crt", "kubelet-ca.nochain.crt"}
)

func baseSANs() SANs {
	return SANs{DNSNames: []string{"kubernetes", "kubernetes.default.svc", "localhost"}, IPs: []net.IP{serviceIP, net.ParseIP("127.0.0.1")}}
}

func files(cp ControlPlane) []string {
	return []string{
		cp.ServerCA, cp.ServerCAKey, cp.ClientCA, cp.ClientCAKey, cp.RequestHeaderCA, cp.RequestHeaderCAKey,
		cp.KubeletCA, cp.KubeletCAKey, cp.ServiceAccountKey, cp.ServingCert, cp.ServingKey, cp.AdminCert, cp.AdminKey,
		cp.ControllerCert, cp.ControllerKey, cp.SchedulerCert, cp.SchedulerKey,
		cp.APIServerKubeletCert, cp.APIServerKubeletKey, cp.ProxyClientCert, cp.ProxyClientKey,
		cp.ServerCANoChain, cp.ClientCANoChain, cp.RequestHeaderCANoChain, cp.KubeletCANoChain,
	}
}

// snapshot maps every file name in dir to its content.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

// changed returns the sorted names whose content differs between a and b.
func changed(a, b map[string][]byte) []string {
	var out []string
	for name := range b {
		if !bytes.Equal(a[name], b[name]) {
			out = append(out, name)
		}
	}
	for name := range a {
		if _, ok := b[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	return readCerts(t, path)[0]
}

// readCerts is every certificate in a PEM file.
func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertsPEM(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return certs
}

func verify(t *testing.T, leaf, root *x509.Certificate, opts x509.VerifyOptions) error {
	t.Helper()
	opts.Roots = x509.NewCertPool()
	opts.Roots.AddCert(root)
	_, err := leaf.Verify(opts)
	return err
}

func ensure(t *testing.T, dir string, sans SANs, now time.Time) (ControlPlane, []string) {
	t.Helper()
	cp, notes, err := EnsureControlPlane(dir, sans, 0, renew, now)
	if err != nil {
		t.Fatalf("EnsureControlPlane: %v", err)
	}
	return cp, notes
}

func TestEnsureControlPlaneCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	cp, notes := ensure(t, dir, baseSANs(), t0)

	if fi, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, f := range files(cp) {
		if filepath.Dir(f) != dir {
			t.Errorf("%s is not in %s", f, dir)
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	// Nothing else, such as a leftover temp file.
	if entries, _ := os.ReadDir(dir); len(entries) != len(files(cp)) {
		t.Errorf("dir holds %d files, want %d", len(entries), len(files(cp)))
	}

	serverCA, clientCA, rhCA := readCert(t, cp.ServerCA), readCert(t, cp.ClientCA), readCert(t, cp.RequestHeaderCA)
	serving := readCert(t, cp.ServingCert)
	for _, name := range []string{"kubernetes.default.svc", serviceIP.String(), "127.0.0.1"} {
		err := verify(t, serving, serverCA, x509.VerifyOptions{DNSName: name, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("serving cert for %s: %v", name, err)
		}
	}
	if verify(t, serving, serverCA, x509.VerifyOptions{DNSName: "evil.example.com", CurrentTime: t0}) == nil {
		t.Error("serving cert verified for a name it does not hold")
	}
	if verify(t, serving, clientCA, x509.VerifyOptions{CurrentTime: t0}) == nil {
		t.Error("serving cert verified against the client CA")
	}

	admin := readCert(t, cp.AdminCert)
	if err := verify(t, admin, clientCA, x509.VerifyOptions{CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert: %v", err)
	}
	if verify(t, admin, clientCA, x509.VerifyOptions{CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}) == nil {
		t.Error("admin cert verified for server auth")
	}
	if admin.Subject.CommonName != "system:admin" || !slices.Equal(admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject %v", admin.Subject)
	}
	if got := admin.NotAfter.Sub(t0); got != 365*24*time.Hour {
		t.Errorf("admin validity from now %v, want 365 days", got)
	}
	if !admin.NotBefore.Equal(t0.Add(-time.Hour)) {
		t.Errorf("admin NotBefore %v", admin.NotBefore)
	}

	proxy := readCert(t, cp.ProxyClientCert)
	if err := verify(t, proxy, rhCA, x509.VerifyOptions{CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("auth-proxy cert against request-header CA: %v", err)
	}
	if verify(t, proxy, clientCA, x509.VerifyOptions{CurrentTime: t0}) == nil {
		t.Error("auth-proxy cert verified against the client CA")
	}
	for _, f := range []string{cp.ControllerCert, cp.SchedulerCert, cp.APIServerKubeletCert} {
		if err := verify(t, readCert(t, f), clientCA, x509.VerifyOptions{CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	if !serverCA.IsCA || serverCA.NotAfter.Sub(t0) < 10*365*24*time.Hour {
		t.Errorf("server CA: IsCA=%v NotAfter=%v", serverCA.IsCA, serverCA.NotAfter)
	}
	// Every certificate is signed with a key whose pair is on disk.
	for _, pair := range [][2]string{{cp.ServerCA, cp.ServerCAKey}, {cp.ServingCert, cp.ServingKey}, {cp.AdminCert, cp.AdminKey}} {
		if _, err := tls.LoadX509KeyPair(pair[0], pair[1]); err != nil {
			t.Errorf("pair %s: %v", pair[0], err)
		}
	}
	if !slices.Contains(notes, "created server CA") || !slices.Contains(notes, "created serving certificate") {
		t.Errorf("notes %q", notes)
	}
}

func TestEnsureControlPlaneReuses(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, baseSANs(), t0)
	before := snapshot(t, dir)

	_, notes := ensure(t, dir, baseSANs(), t0.Add(24*time.Hour))
	if c := changed(before, snapshot(t, dir)); len(c) != 0 {
		t.Errorf("second run changed %v", c)
	}
	if len(notes) != 0 {
		t.Errorf("second run notes %q, want none", notes)
	}
}

func TestEnsureControlPlaneNewSAN(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, baseSANs(), t0)
	before := snapshot(t, dir)

	sans := baseSANs()
	sans.DNSNames = append(sans.DNSNames, "kubox.example.com")
	cp, notes := ensure(t, dir, sans, t0)
	want := []string{"serving-kube-apiserver.crt", "serving-kube-apiserver.key"}
	if c := changed(before, snapshot(t, dir)); !slices.Equal(c, want) {
		t.Errorf("changed %v, want %v", c, want)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "re-issued serving certificate") {
		t.Errorf("notes %q", notes)
	}
	err := verify(t, readCert(t, cp.ServingCert), readCert(t, cp.ServerCA), x509.VerifyOptions{DNSName: "kubox.example.com", CurrentTime: t0})
	if err != nil {
		t.Error(err)
	}
}

func TestEnsureControlPlaneRenewsLeaves(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, baseSANs(), t0)
	before := snapshot(t, dir)

	later := t0.Add(300 * 24 * time.Hour)
	cp, notes := ensure(t, dir, baseSANs(), later)
	after := snapshot(t, dir)
	c := changed(before, after)
	for _, name := range caFileKeys {
		if slices.Contains(c, name) {
			t.Errorf("%s changed; CAs and the service-account key must be kept", name)
		}
	}
	if want := len(before) - len(caFileKeys); len(c) != want {
		t.Errorf("changed %v, want all %d leaf files", c, want)
	}
	serving := readCert(t, cp.ServingCert)
	if !serving.NotAfter.Equal(later.Add(365 * 24 * time.Hour)) {
		t.Errorf("renewed serving cert NotAfter %v", serving.NotAfter)
	}
	if err := verify(t, serving, readCert(t, cp.ServerCA), x509.VerifyOptions{DNSName: "kubernetes.default.svc", CurrentTime: later}); err != nil {
		t.Error(err)
	}
	if !slices.Contains(notes, "renewed serving certificate (expires within 120 days)") {
		t.Errorf("notes %q", notes)
	}
}

func TestCARenewalKeepsKeyAndLeaves(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	ca, err := LoadOrCreateCA(certFile, keyFile, "test-ca", renew, t0)
	if err != nil {
		t.Fatal(err)
	}
	keyBefore, _ := os.ReadFile(keyFile)

	// A leaf issued late in the CA's life, still valid after the CA renews.
	issued := ca.Cert.NotAfter.Add(-200 * 24 * time.Hour)
	leafCert, leafKey := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	if _, err := ca.EnsureCert(leafCert, leafKey, CertSpec{CommonName: "leaf", Client: true}, renew, issued); err != nil {
		t.Fatal(err)
	}

	renewAt := ca.Cert.NotAfter.Add(-100 * 24 * time.Hour)
	renewed, err := LoadOrCreateCA(certFile, keyFile, "ignored", renew, renewAt)
	if err != nil {
		t.Fatal(err)
	}
	if keyAfter, _ := os.ReadFile(keyFile); !bytes.Equal(keyBefore, keyAfter) {
		t.Error("CA key changed on renewal")
	}
	if !renewed.Cert.NotAfter.After(ca.Cert.NotAfter) || renewed.Cert.Subject.CommonName != "test-ca" {
		t.Errorf("renewed CA NotAfter %v CN %q", renewed.Cert.NotAfter, renewed.Cert.Subject.CommonName)
	}
	if onDisk, _ := os.ReadFile(certFile); !bytes.Equal(onDisk, renewed.CertPEM) {
		t.Error("renewed CA certificate not written back")
	}
	// The old leaf still verifies once the old CA certificate has expired.
	check := ca.Cert.NotAfter.Add(time.Hour)
	if err := verify(t, readCert(t, leafCert), renewed.Cert, x509.VerifyOptions{CurrentTime: check, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("old leaf against renewed CA: %v", err)
	}
	if reused, err := renewed.EnsureCert(leafCert, leafKey, CertSpec{CommonName: "leaf", Client: true}, renew, renewAt); err != nil || !reused {
		t.Errorf("EnsureCert after CA renewal: reused=%v err=%v, want reuse", reused, err)
	}
}

func TestCorruptCAKeyIsNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	cp, _ := ensure(t, dir, baseSANs(), t0)
	garbage := []byte("not a key\n")
	if err := os.WriteFile(cp.ServerCAKey, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := EnsureControlPlane(dir, baseSANs(), 0, renew, t0)
	if err == nil || !strings.Contains(err.Error(), cp.ServerCAKey) {
		t.Fatalf("err = %v, want one naming %s", err, cp.ServerCAKey)
	}
	if b, _ := os.ReadFile(cp.ServerCAKey); !bytes.Equal(b, garbage) {
		t.Error("corrupt CA key was overwritten")
	}
}

func TestCAHalfPresentOrMismatched(t *testing.T) {
	dir := t.TempDir()
	cp, _ := ensure(t, dir, baseSANs(), t0)

	// The client CA's key does not belong to the server CA.
	other, _ := os.ReadFile(cp.ClientCAKey)
	os.WriteFile(cp.ServerCAKey, other, 0o600)
	if _, err := LoadOrCreateCA(cp.ServerCA, cp.ServerCAKey, "x", renew, t0); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched pair: err = %v", err)
	}

	os.Remove(cp.ServerCAKey)
	certBefore, _ := os.ReadFile(cp.ServerCA)
	if _, err := LoadOrCreateCA(cp.ServerCA, cp.ServerCAKey, "x", renew, t0); err == nil || !strings.Contains(err.Error(), cp.ServerCAKey) {
		t.Errorf("missing key: err = %v", err)
	}
	if _, err := os.Stat(cp.ServerCAKey); err == nil {
		t.Error("a key was created for an existing CA certificate")
	}
	if b, _ := os.ReadFile(cp.ServerCA); !bytes.Equal(b, certBefore) {
		t.Error("CA certificate changed")
	}
}

func TestEnsureCertReplacesCorruptLeaf(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), "ca", renew, t0)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	spec := CertSpec{CommonName: "a", Server: true, SANs: SANs{DNSNames: []string{"a.example"}}}
	if reused, err := ca.EnsureCert(crt, key, spec, renew, t0); err != nil || reused {
		t.Fatalf("first: reused=%v err=%v", reused, err)
	}
	if reused, err := ca.EnsureCert(crt, key, spec, renew, t0); err != nil || !reused {
		t.Fatalf("second: reused=%v err=%v", reused, err)
	}
	os.WriteFile(key, []byte("garbage"), 0o600)
	if reused, err := ca.EnsureCert(crt, key, spec, renew, t0); err != nil || reused {
		t.Fatalf("after corruption: reused=%v err=%v", reused, err)
	}
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		t.Error(err)
	}
	// A changed usage is a reason to re-issue too.
	spec.Client = true
	if reused, err := ca.EnsureCert(crt, key, spec, renew, t0); err != nil || reused {
		t.Fatalf("usage change: reused=%v err=%v", reused, err)
	}
}

func TestEnsureKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "service.key")
	if err := EnsureKey(path); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	if !bytes.HasPrefix(first, []byte("-----BEGIN EC PRIVATE KEY-----")) {
		t.Errorf("key file starts %q", first[:min(len(first), 40)])
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if err := EnsureKey(path); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Error("existing key replaced")
	}
	os.WriteFile(path, []byte("junk"), 0o600)
	if err := EnsureKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt key: err = %v", err)
	}
}

func TestEnsureToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	a, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("tokens differ: %q %q", a, b)
	}
	if _, err := hex.DecodeString(a); err != nil || len(a) != 64 {
		t.Errorf("token %q is not 64 hex chars", a)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if c, _ := NewToken(); c == a {
		t.Error("NewToken repeated a token")
	}
	os.WriteFile(path, []byte(" \n"), 0o600)
	if _, err := EnsureToken(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("empty token file: err = %v", err)
	}
}

func TestWriteKubeconfig(t *testing.T) {
	dir := t.TempDir()
	cp, _ := ensure(t, filepath.Join(dir, "tls"), baseSANs(), t0)
	caPEM, _ := os.ReadFile(cp.ServerCA)
	certPEM, _ := os.ReadFile(cp.AdminCert)
	keyPEM, _ := os.ReadFile(cp.AdminKey)

	for _, mode := range []os.FileMode{0o600, 0o640} {
		path := filepath.Join(dir, "cred", mode.String(), "admin.kubeconfig")
		const server = "https://127.0.0.1:6443"
		if err := WriteKubeconfig(path, server, caPEM, cp.AdminCert, cp.AdminKey, mode); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil {
			t.Fatal(err)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), mode)
		}
		if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
			t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
		}
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.CurrentContext != "default" {
			t.Errorf("current context %q", cfg.CurrentContext)
		}
		cluster, user := cfg.Clusters["default"], cfg.AuthInfos["default"]
		if cluster == nil || user == nil || cfg.Contexts["default"] == nil {
			t.Fatalf("missing default entries: %+v", cfg)
		}
		if cluster.Server != server || !bytes.Equal(cluster.CertificateAuthorityData, caPEM) {
			t.Errorf("cluster %+v", cluster)
		}
		if !bytes.Equal(user.ClientCertificateData, certPEM) || !bytes.Equal(user.ClientKeyData, keyPEM) {
			t.Error("client certificate or key not embedded")
		}
		if user.ClientCertificate != "" || user.ClientKey != "" {
			t.Error("kubeconfig references files instead of embedding them")
		}
	}

	err := WriteKubeconfig(filepath.Join(dir, "x.kubeconfig"), "https://x", caPEM, filepath.Join(dir, "missing.crt"), cp.AdminKey, 0o600)
	if err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("missing cert: err = %v", err)
	}
}

func TestSign(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), "ca", renew, t0)
	if err != nil {
		t.Fatal(err)
	}
	spec := CertSpec{CommonName: "node-a", Server: true, SANs: SANs{DNSNames: []string{"node-a"}, IPs: []net.IP{net.ParseIP("10.0.0.7")}}}
	certPEM, keyPEM, err := ca.Sign(spec, t0)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("key does not match certificate: %v", err)
	}
	cert := pair.Leaf
	for _, name := range []string{"node-a", "10.0.0.7"} {
		if err := verify(t, cert, ca.Cert, x509.VerifyOptions{DNSName: name, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if verify(t, cert, ca.Cert, x509.VerifyOptions{CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}) == nil {
		t.Error("a serving-only certificate verified for client auth")
	}
	if got := cert.NotAfter.Sub(t0); got != 365*24*time.Hour {
		t.Errorf("validity %v", got)
	}
	// Nothing is written: the credentials belong to someone else.
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("dir holds %d files, want only the CA pair", len(entries))
	}
	again, _, err := ca.Sign(spec, t0)
	if err != nil || bytes.Equal(again, certPEM) {
		t.Errorf("second Sign: err=%v, same certificate=%v", err, bytes.Equal(again, certPEM))
	}
}

func TestWriteToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if _, err := EnsureToken(path); err != nil {
		t.Fatal(err)
	}
	if err := WriteToken(path, " kbx1.abc.secret\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "kbx1.abc.secret\n" {
		t.Errorf("file holds %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if got, err := EnsureToken(path); err != nil || got != "kbx1.abc.secret" {
		t.Errorf("EnsureToken after WriteToken = %q, %v", got, err)
	}
	if err := WriteToken(path, " "); err == nil {
		t.Error("an empty token was written")
	}
}

func TestKubeletCAIsSeparate(t *testing.T) {
	cp, _ := ensure(t, t.TempDir(), baseSANs(), t0)
	kubelet, server := readCert(t, cp.KubeletCA), readCert(t, cp.ServerCA)
	if !kubelet.IsCA || kubelet.Subject.String() == server.Subject.String() || kubelet.Equal(server) {
		t.Fatalf("kubelet CA %s is not a CA of its own (server CA %s)", kubelet.Subject, server.Subject)
	}
}

func TestCredential(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), "test", 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sub", "node.pem")
	spec := CertSpec{CommonName: "system:node:n1", Organization: []string{"system:nodes"}, Client: true, Validity: 3 * time.Hour}
	if err := ca.EnsureCredential(path, spec, time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	pair, err := ReadCredential(path)
	if err != nil {
		t.Fatal(err)
	}
	if !pair.Leaf.NotAfter.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("NotAfter %v, want the spec's validity", pair.Leaf.NotAfter)
	}
	// Two thirds of three hours: due after two.
	if at := RenewAt(pair.Leaf, 24*time.Hour); !at.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("RenewAt %v, want %v", at, t0.Add(2*time.Hour))
	}
	// No later than renewBefore ahead of expiry.
	if at := RenewAt(pair.Leaf, 10*time.Minute); !at.Equal(t0.Add(3*time.Hour - 10*time.Minute)) {
		t.Errorf("RenewAt with a short renewBefore %v", at)
	}
	// Kept while good, replaced when due.
	if err := ca.EnsureCredential(path, spec, time.Hour, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("a good credential was replaced")
	}
	if err := ca.EnsureCredential(path, spec, time.Hour, t0.Add(150*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) == string(first) {
		t.Error("a credential within renewBefore of expiry was kept")
	}
	if err := WriteCredential(path, first, []byte("not a key")); err == nil {
		t.Error("WriteCredential accepted a certificate without its key")
	}
}
