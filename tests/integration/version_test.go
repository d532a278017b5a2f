package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

const kubeVersion = "v1.37.2"

// TestVersion: kubox reports its own version, the Kubernetes version and
// the commit, and the API reports the Kubernetes version.
func TestVersion(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	bin := kuboxBin(t)
	out, err := run(bin, []string{"--version"}, nil)
	if err != nil {
		t.Fatalf("kubox --version: %v\n%s", err, out)
	}
	for _, re := range []string{`kubox version v\S+`, `kubernetes ` + regexp.QuoteMeta(kubeVersion), `commit [0-9a-f]{7,40}\b`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("kubox --version output lacks %s:\n%s", re, out)
		}
	}

	s := newServer(t)
	s.StartReady()
	var v struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	out = s.MustKubectl("version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("kubectl version -o json: %v\n%s", err, out)
	}
	if v.ServerVersion.GitVersion != kubeVersion || v.ClientVersion.GitVersion != kubeVersion {
		t.Errorf("embedded kubectl version: client %q server %q, want %s", v.ClientVersion.GitVersion, v.ServerVersion.GitVersion, kubeVersion)
	}
	if host, err := exec.LookPath("kubectl"); err == nil {
		out, err := run(host, []string{"version", "-o", "json"}, []string{"KUBECONFIG=" + s.Kubeconfig})
		if err != nil {
			t.Fatalf("host kubectl version: %v\n%s", err, out)
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.ServerVersion.GitVersion != kubeVersion {
			t.Errorf("host kubectl sees server version %q, want %s (%v)", v.ServerVersion.GitVersion, kubeVersion, err)
		}
	}

	// A link named kubectl is the embedded kubectl.
	link := filepath.Join(t.TempDir(), "kubectl")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	out, err = run(link, []string{"version", "--client", "-o", "json"}, nil)
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.ClientVersion.GitVersion != kubeVersion {
		t.Errorf("kubectl link: client version %q (%v)\n%s", v.ClientVersion.GitVersion, err, out)
	}
}
