package crictl

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRepoTags(t *testing.T) {
	for _, c := range []struct {
		img  *runtimeapi.Image
		want [][2]string
	}{
		{&runtimeapi.Image{RepoTags: []string{"kubox.test/echo:v1", "registry:5000/app:2"}},
			[][2]string{{"kubox.test/echo", "v1"}, {"registry:5000/app", "2"}}},
		{&runtimeapi.Image{RepoTags: []string{"registry:5000/app"}}, [][2]string{{"registry:5000/app", "<none>"}}},
		{&runtimeapi.Image{RepoDigests: []string{"docker.io/library/nginx@sha256:abc"}}, [][2]string{{"docker.io/library/nginx", "<none>"}}},
		{&runtimeapi.Image{}, [][2]string{{"<none>", "<none>"}}},
	} {
		if got := repoTags(c.img); !reflect.DeepEqual(got, c.want) {
			t.Errorf("repoTags(%v) = %q, want %q", c.img, got, c.want)
		}
	}
}

func TestShortID(t *testing.T) {
	if got := shortID("sha256:0123456789abcdef0123"); got != "0123456789abc" {
		t.Errorf("shortID of a digest = %q", got)
	}
	if got := shortID("abc"); got != "abc" {
		t.Errorf("shortID of a short ID = %q", got)
	}
}

// A stopped node is one line naming the socket and how to point elsewhere.
func TestMissingSocket(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"crictl", "ps"}, Options{Endpoint: "unix://" + t.TempDir() + "/containerd.sock", Stdout: &out, Stderr: &errOut})
	msg := errOut.String()
	if code != 1 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "no container runtime socket at") || !strings.Contains(msg, "--runtime-endpoint") {
		t.Fatalf("exit %d, stderr %q", code, msg)
	}
	// Help needs no runtime.
	out.Reset()
	if code := Main([]string{"crictl", "--help"}, Options{Endpoint: "unix:///nonexistent", Stdout: &out, Stderr: &errOut}); code != 0 || !strings.Contains(out.String(), "ps") {
		t.Fatalf("--help: exit %d\n%s", code, out.String())
	}
}
