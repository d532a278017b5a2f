package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestRenewDue(t *testing.T) {
	dir := t.TempDir()
	const life = 3 * time.Minute
	cp, _, err := EnsureControlPlane(dir, baseSANs(), life, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := loadCA(cp.ClientCA, cp.ClientCAKey)
	if err != nil {
		t.Fatal(err)
	}
	serverCA, err := loadCA(cp.ServerCA, cp.ServerCAKey)
	if err != nil {
		t.Fatal(err)
	}
	// A node's credential file, in a directory of its own.
	nodeDir := t.TempDir()
	cred := filepath.Join(nodeDir, "client-node.pem")
	client, _ := NodeSpecs("n1", nil, life)
	if err := clientCA.EnsureCredential(cred, client, time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, f := range []string{cp.ServingCert, cp.AdminCert, cred} {
		before[f] = readCert(t, f).SerialNumber.String()
	}
	cas := []*CA{clientCA, serverCA}

	// Before two thirds of their life nothing is due; the next renewal is
	// at two minutes.
	renewed, next, err := RenewDue(cas, 120*24*time.Hour, t0.Add(time.Minute), dir, nodeDir)
	if err != nil || len(renewed) != 0 {
		t.Fatalf("renewed %v early (%v)", renewed, err)
	}
	if want := t0.Add(2 * time.Minute); !next.Equal(want) {
		t.Fatalf("next renewal %s, want %s", next, want)
	}

	now := t0.Add(2*time.Minute + time.Second)
	renewed, _, err = RenewDue(cas, 120*24*time.Hour, now, dir, nodeDir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range renewed {
		names[r.Name] = true
	}
	// The auth-proxy client's CA (request-header) was not given: left.
	for _, want := range []string{"serving-kube-apiserver", "client-admin", "client-controller", "client-scheduler", "client-kube-apiserver", "client-node"} {
		if !names[want] {
			t.Errorf("%s not renewed (renewed %v)", want, renewed)
		}
	}
	if names["client-auth-proxy"] {
		t.Errorf("client-auth-proxy renewed without its CA")
	}
	serving := readCert(t, cp.ServingCert)
	if serving.SerialNumber.String() == before[cp.ServingCert] {
		t.Fatal("serving certificate kept its serial")
	}
	// Same names and lifetime, valid for the same CA, key matching.
	if err := verify(t, serving, serverCA.Cert, x509.VerifyOptions{CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("renewed serving certificate: %v", err)
	}
	if got := serving.NotAfter.Sub(now); got != life {
		t.Errorf("renewed serving certificate lives %s, want %s", got, life)
	}
	if len(serving.DNSNames) != len(baseSANs().DNSNames) {
		t.Errorf("renewed serving certificate names %v", serving.DNSNames)
	}
	if _, err := ReadCredential(cred); err != nil {
		t.Fatalf("renewed credential: %v", err)
	}
	if c := readCert(t, cred); c.SerialNumber.String() == before[cred] || c.Subject.CommonName != "system:node:n1" {
		t.Fatalf("credential after renewal: serial %s, subject %s", c.SerialNumber, c.Subject.CommonName)
	}
	// The pair on disk still matches: the next start reuses it.
	if _, _, err := EnsureControlPlane(dir, baseSANs(), life, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if again := readCert(t, cp.ServingCert); again.SerialNumber.Cmp(serving.SerialNumber) != 0 {
		t.Error("a start after the renewal issued the serving certificate again")
	}
}

func TestRenewNamed(t *testing.T) {
	dir := t.TempDir()
	cp, _, err := EnsureControlPlane(dir, baseSANs(), 0, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := loadCA(cp.ClientCA, cp.ClientCAKey)
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(dir, "admin.yaml")
	if err := WriteKubeconfig(kc, "https://127.0.0.1:6443", []byte("ca"), cp.AdminCert, cp.AdminKey, 0o640); err != nil {
		t.Fatal(err)
	}
	scheduler := readCert(t, cp.SchedulerCert).SerialNumber.String()
	renewed, err := Renew([]*CA{clientCA}, []string{"client-admin"}, t0.Add(time.Hour), dir)
	if err != nil || len(renewed) != 1 || renewed[0].Name != "client-admin" {
		t.Fatalf("renewed %v, %v", renewed, err)
	}
	if readCert(t, cp.SchedulerCert).SerialNumber.String() != scheduler {
		t.Error("a certificate not named was renewed")
	}
	if err := RefreshKubeconfig(kc, cp.AdminCert, cp.AdminKey); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(cp.AdminCert)
	if got := cfg.AuthInfos["default"].ClientCertificateData; string(got) != string(certPEM) {
		t.Error("the kubeconfig still embeds the old admin certificate")
	}
	if fi, _ := os.Stat(kc); fi.Mode().Perm() != 0o640 {
		t.Errorf("kubeconfig mode %v, want 0640", fi.Mode().Perm())
	}
	if _, err := Renew([]*CA{clientCA}, []string{"no-such"}, t0, dir); err == nil {
		t.Error("renewing an unknown name succeeded")
	}
}
