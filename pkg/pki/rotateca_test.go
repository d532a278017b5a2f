package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rotation is a control plane with its CAs, and a directory for new ones.
type rotation struct {
	cp     ControlPlane
	cas    []*CA // server, client, request-header, kubelet
	newDir string
}

func newRotation(t *testing.T) rotation {
	t.Helper()
	cp, _ := ensure(t, filepath.Join(t.TempDir(), "tls"), baseSANs(), t0)
	cas, err := LoadCAs(cp)
	if err != nil {
		t.Fatal(err)
	}
	return rotation{cp: cp, cas: cas, newDir: t.TempDir()}
}

// put writes a new CA for current into r.newDir under name (server-ca, …),
// cross-signed by current unless selfSignedOnly.
func (r rotation) put(t *testing.T, name string, current *CA, selfSignedOnly bool) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := NewCrossSignedCA(current, "new-"+name, t0)
	if err != nil {
		t.Fatal(err)
	}
	if selfSignedOnly {
		certs, _ := parseCertsPEM(certPEM)
		certPEM = encodeCert(certs[0].Raw)
	}
	r.write(t, name+".crt", certPEM)
	r.write(t, name+".key", keyPEM)
	return certPEM, keyPEM
}

func (r rotation) write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.newDir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// chainVerifies verifies the first certificate of file against root alone,
// with the rest of the file as intermediates.
func chainVerifies(t *testing.T, file string, root *x509.Certificate, usage x509.ExtKeyUsage) error {
	t.Helper()
	certs := readCerts(t, file)
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), CurrentTime: t0.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{usage}}
	opts.Roots.AddCert(root)
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	return err
}

func TestRotateCAKeepsOldTrust(t *testing.T) {
	r := newRotation(t)
	oldServer, oldClient, oldRH := r.cas[0].Cert, r.cas[1].Cert, r.cas[2].Cert
	r.put(t, "server-ca", r.cas[0], false)
	r.put(t, "client-ca", r.cas[1], false)
	rhBefore, _ := os.ReadFile(r.cp.RequestHeaderCA)

	newCAs, err := CheckNewCAs(r.cp, r.newDir, false, t0)
	if err != nil {
		t.Fatalf("CheckNewCAs refused cross-signed CAs: %v", err)
	}
	if len(newCAs) != 2 || newCAs[0].Name != "server CA" || newCAs[1].Name != "client CA" {
		t.Fatalf("new CAs %+v, want the server and client CAs", newCAs)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if err := RotateCAs(newCAs, backup); err != nil {
		t.Fatal(err)
	}
	cas, err := LoadCAs(r.cp)
	if err != nil {
		t.Fatalf("LoadCAs after the rotation: %v", err)
	}
	if _, err := Renew(cas, nil, t0, r.cp.Dir); err != nil {
		t.Fatal(err)
	}

	newServer, newClient := cas[0].Cert, cas[1].Cert
	if newServer.Subject.CommonName != "new-server-ca" || newClient.Subject.CommonName != "new-client-ca" {
		t.Fatalf("signing CAs after the rotation: %s, %s", newServer.Subject.CommonName, newClient.Subject.CommonName)
	}
	if !containsCert(cas[0].Bundle, oldServer) || !containsCert(cas[1].Bundle, oldClient) {
		t.Error("the CA files no longer hold the replaced CAs: nodes' old certificates would stop verifying")
	}
	if rhAfter, _ := os.ReadFile(r.cp.RequestHeaderCA); string(rhAfter) != string(rhBefore) {
		t.Error("the request-header CA changed, though --path held none")
	}
	for file, want := range map[string]*x509.Certificate{r.cp.ServerCANoChain: newServer, r.cp.ClientCANoChain: newClient, r.cp.RequestHeaderCANoChain: oldRH} {
		if certs := readCerts(t, file); len(certs) != 1 || !certs[0].Equal(want) {
			t.Errorf("%s must hold the signing CA alone (%d certificates)", file, len(certs))
		}
	}
	for _, name := range []string{"server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key"} {
		if _, err := os.Stat(filepath.Join(backup, name)); err != nil {
			t.Errorf("backup: %v", err)
		}
	}

	// Every leaf is the new CA's, and verifies for a peer that trusts only
	// the old root as for one that trusts only the new one.
	for _, c := range []struct {
		file     string
		old, new *x509.Certificate
		usage    x509.ExtKeyUsage
	}{
		{r.cp.ServingCert, oldServer, newServer, x509.ExtKeyUsageServerAuth},
		{r.cp.AdminCert, oldClient, newClient, x509.ExtKeyUsageClientAuth},
		{r.cp.APIServerKubeletCert, oldClient, newClient, x509.ExtKeyUsageClientAuth},
	} {
		leaf := readCert(t, c.file)
		if leaf.CheckSignatureFrom(c.new) != nil {
			t.Errorf("%s is not issued by the new CA", filepath.Base(c.file))
		}
		if err := chainVerifies(t, c.file, c.old, c.usage); err != nil {
			t.Errorf("%s against the old root alone: %v", filepath.Base(c.file), err)
		}
		if err := chainVerifies(t, c.file, c.new, c.usage); err != nil {
			t.Errorf("%s against the new root: %v", filepath.Base(c.file), err)
		}
		if verify(t, leaf, c.old, x509.VerifyOptions{CurrentTime: t0}) == nil {
			t.Errorf("%s verified against the old root without its chain: the test proves nothing", filepath.Base(c.file))
		}
	}
	if err := chainVerifies(t, r.cp.ProxyClientCert, oldRH, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("the auth-proxy certificate against its unchanged CA: %v", err)
	}

	// A restart keeps what the rotation wrote.
	before := snapshot(t, r.cp.Dir)
	if _, notes := ensure(t, r.cp.Dir, baseSANs(), t0.Add(time.Hour)); len(notes) != 0 {
		t.Errorf("the next start after the rotation: %q, want no change", notes)
	}
	if c := changed(before, snapshot(t, r.cp.Dir)); len(c) != 0 {
		t.Errorf("the next start after the rotation changed %v", c)
	}

	// The same --path again: the CAs are in place, nothing is refused.
	again, err := CheckNewCAs(r.cp, r.newDir, false, t0)
	if err != nil || len(again) != 2 || !again[0].InPlace || !again[1].InPlace {
		t.Errorf("rotate-ca again with the same --path: %+v, %v", again, err)
	}
}

func TestRotateCARefusals(t *testing.T) {
	for _, c := range []struct {
		name    string
		force   bool
		prepare func(t *testing.T, r rotation)
		want    []string // in the one-line error
	}{
		{"missing dir", false, func(t *testing.T, r rotation) { os.RemoveAll(r.newDir) },
			[]string{"--path", "no such file or directory"}},
		{"empty dir", false, func(t *testing.T, r rotation) {},
			[]string{"holds no new CA", "server-ca.crt"}},
		{"not cross-signed", false, func(t *testing.T, r rotation) { r.put(t, "client-ca", r.cas[1], true) },
			[]string{"client-ca.crt is not cross-signed by the current client CA", "--force"}},
		{"cross-signed by another CA", false, func(t *testing.T, r rotation) {
			certPEM, keyPEM := r.put(t, "kubelet-ca", r.cas[0], false) // the server CA's signature
			_, _ = certPEM, keyPEM
		}, []string{"kubelet-ca.crt is not cross-signed by the current kubelet CA"}},
		{"key mismatch", false, func(t *testing.T, r rotation) {
			r.put(t, "server-ca", r.cas[0], false)
			_, otherKey, _ := NewCrossSignedCA(r.cas[0], "other", t0)
			r.write(t, "server-ca.key", otherKey)
		}, []string{"server-ca.key does not match the certificate", "server-ca.crt"}},
		{"not a CA", false, func(t *testing.T, r rotation) {
			cert, _ := os.ReadFile(r.cp.ServingCert)
			key, _ := os.ReadFile(r.cp.ServingKey)
			r.write(t, "server-ca.crt", cert)
			r.write(t, "server-ca.key", key)
		}, []string{"server-ca.crt is not a CA certificate"}},
		{"no key", false, func(t *testing.T, r rotation) {
			r.put(t, "server-ca", r.cas[0], false)
			os.Remove(filepath.Join(r.newDir, "server-ca.key"))
		}, []string{"server-ca.crt has no key beside it"}},
		{"not PEM", false, func(t *testing.T, r rotation) {
			r.write(t, "request-header-ca.crt", []byte("hello"))
			r.write(t, "request-header-ca.key", []byte("hello"))
		}, []string{"request-header-ca.crt", "no PEM certificate"}},
		{"one good, one bad", false, func(t *testing.T, r rotation) {
			r.put(t, "server-ca", r.cas[0], false)
			r.put(t, "kubelet-ca", r.cas[3], true)
		}, []string{"kubelet-ca.crt is not cross-signed"}},
		{"force still checks the key", true, func(t *testing.T, r rotation) {
			r.put(t, "client-ca", r.cas[1], true)
			_, otherKey, _ := NewCrossSignedCA(r.cas[1], "other", t0)
			r.write(t, "client-ca.key", otherKey)
		}, []string{"client-ca.key does not match"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRotation(t)
			c.prepare(t, r)
			before := snapshot(t, r.cp.Dir)
			_, err := CheckNewCAs(r.cp, r.newDir, c.force, t0)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if ch := changed(before, snapshot(t, r.cp.Dir)); len(ch) != 0 {
				t.Errorf("a refusal changed %v", ch)
			}
		})
	}
}

func TestRotateCAForce(t *testing.T) {
	r := newRotation(t)
	old := r.cas[1].Cert
	r.put(t, "client-ca", r.cas[1], true)
	newCAs, err := CheckNewCAs(r.cp, r.newDir, true, t0)
	if err != nil {
		t.Fatalf("--force refused a CA that is not cross-signed: %v", err)
	}
	if err := RotateCAs(newCAs, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	cas, err := LoadCAs(r.cp)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := Renew(cas, nil, t0, r.cp.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(renewed, func(x Renewed) bool { return x.Name == "client-admin" }) {
		t.Errorf("renewed %v: the admin certificate was issued by the replaced CA and must be issued again", renewed)
	}
	// Without a cross-signature the old root no longer vouches for new
	// leaves; it stays trusted for the old ones.
	if chainVerifies(t, r.cp.AdminCert, old, x509.ExtKeyUsageClientAuth) == nil {
		t.Error("a leaf of a CA that is not cross-signed verified against the old root")
	}
	if !containsCert(cas[1].Bundle, old) {
		t.Error("the client CA file dropped the replaced CA")
	}
}
