package join

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestWriteBundle(t *testing.T) {
	ts := newTestServer(t)
	b, err := Join(context.Background(), ts.url, ts.token(), nodeRequest("node-1", "pw"), JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "agent", "tls")
	creds, err := WriteBundle(dir, ts.url, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{creds.ServerCAFile, creds.ClientCAFile, creds.ServingCert, creds.ServingKey,
		creds.Credential, creds.Kubeconfig} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(f) != dir || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	cfg, err := clientcmd.LoadFromFile(creds.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster, user := cfg.Clusters["default"], cfg.AuthInfos["default"]
	if cluster.Server != ts.url || string(cluster.CertificateAuthorityData) != b.CABundle ||
		user.ClientCertificate != creds.Credential || user.ClientKey != creds.Credential {
		t.Error("node kubeconfig does not hold the server and the CA, and name the credential file")
	}
	if got, _ := os.ReadFile(creds.Credential); string(got) != b.Node.Cert+b.Node.Key {
		t.Error("the credential file does not hold the node's certificate and key")
	}
	if got, _ := os.ReadFile(creds.ServingKey); string(got) != b.Serving.Key {
		t.Error("serving key not written")
	}
}
