package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/tests/testenv"
)

// TestImages: `kubox crictl` (and a link named crictl), upstream crictl,
// reaches the node with no flags; images from agent/images are imported with their progress in the
// log and pinned, so the kubelet's image GC, forced by disk pressure, removes
// an unused image imported by hand but never them; an image list naming an
// unreachable registry is reported and does not stop the node; a pod
// created at start reaches a Service on its first try.
func TestImages(t *testing.T) {
	images := testImages(t)
	testenv.LockNodes(t)
	s := newNodeServer(t, "--disable", "metrics-server", "--v", "2")
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	imagesDir := filepath.Join(s.DataDir, "agent", "images")
	list := "# a registry no one serves\n127.0.0.1:1/kubox-test/absent:v1 # pulled once when reachable\n"
	if err := os.WriteFile(filepath.Join(imagesDir, "extra.txt"), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	// The clients find the node through its config file, as on an
	// installed node (/etc/kubox/config.yaml).
	cfg := fmt.Sprintf("data-dir: %s\nrun-dir: %s\n", s.DataDir, s.RunDir)
	if err := os.WriteFile(s.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBOX_CONFIG_FILE=" + s.ConfigFile}
	crictl := func(args ...string) string {
		t.Helper()
		out, err := run(s.bin, append([]string{"crictl"}, args...), env)
		if err != nil {
			t.Fatalf("kubox crictl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	s.StartReady()
	// A pod created as soon as the API answers runs once the node is
	// Ready, and its first connection to a Service (the API's, on
	// 10.43.0.1:443; plain HTTP, which only the API server's TLS listener
	// answers so) must be translated already: node Ready means the pod
	// network and kube-proxy's rules are in place. Its image comes from
	// agent/images, imported before the kubelet started.
	firstPod := filepath.Join(t.TempDir(), "first.yaml")
	if err := os.WriteFile(firstPod, []byte(firstConnectionPod), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod first created", time.Minute, func() (bool, string) {
		out, err := s.Kubectl("apply", "-f", firstPod) // the default ServiceAccount may not exist yet
		return err == nil, out
	})
	waitNodeReady(t, s)
	waitFor(t, "pod first to finish", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "first", "-o", "jsonpath={.status.phase}")
		return out == "Succeeded" || out == "Failed", out
	})
	if logs, _ := s.Kubectl("logs", "first"); !strings.Contains(logs, "Client sent an HTTP request to an HTTPS server") {
		t.Errorf("a pod started at node Ready did not reach the API server's Service on its first try:\n%s\n%s",
			logs, s.MustKubectl("get", "pod", "first", "-o", "jsonpath={.status}"))
	}
	// The order behind both, in the log: the archive was imported before
	// the kubelet started, and the pod network (the CNI configuration)
	// came after kube-proxy's first sync of the cluster's family (logged
	// at -v 2).
	log := s.logSinceStart()
	inOrder := func(first, then string) {
		t.Helper()
		i, j := strings.Index(log, first), strings.Index(log, then)
		if i < 0 || j < 0 || i > j {
			t.Errorf("the log does not have %q (at %d) before %q (at %d)", first, i, then, j)
		}
	}
	inOrder("imported kubox.test/echo:v1 from", "[kubelet]")
	inOrder("[kube-proxy] SyncProxyRules complete ipFamily=IPv4", "[kubox] pod-network ready")

	s.MustKubectl("run", "echo", "--image", "kubox.test/echo:v1", "--image-pull-policy", "Never")
	if out, err := s.Kubectl("wait", "--for=condition=Ready", "pod/echo", "--timeout=120s"); err != nil {
		t.Fatalf("pod echo not Ready: %v\n%s", err, out)
	}
	progress := "imported kubox.test/echo:v1 from " + filepath.Join(imagesDir, "echo.tar") + ": 1 image, "
	if log := s.tail(5000); !strings.Contains(log, progress) || !strings.Contains(log, "MB/s)") {
		t.Errorf("the log lacks the import's summary %q…MB/s)", progress)
	}

	// (a) crictl with no flags: containers, logs, images; and the link.
	// (ps shows the image's ID, which the kubelet passes, unless asked to
	// resolve it.)
	ps := crictl("ps", "--resolve-image-path")
	if !strings.Contains(ps, "CONTAINER") || !strings.Contains(ps, "kubox.test/echo:v1") {
		t.Errorf("kubox crictl ps --resolve-image-path lacks the echo container:\n%s", ps)
	}
	if v := crictl("--version"); !strings.Contains(v, "crictl version v1.37") {
		t.Errorf("kubox crictl --version printed %q, want upstream crictl v1.37", v)
	}
	id := strings.TrimSpace(crictl("ps", "-q", "--name", "^echo$"))
	if len(id) != 64 {
		t.Fatalf("kubox crictl ps -q --name ^echo$ printed %q, want one container ID", id)
	}
	if logs := crictl("logs", id[:13]); !strings.Contains(logs, "listening on :8080") {
		t.Errorf("kubox crictl logs %s printed %q", id[:13], logs)
	}
	link := filepath.Join(t.TempDir(), "crictl")
	if err := os.Symlink(s.bin, link); err != nil {
		t.Fatal(err)
	}
	if out, err := run(link, []string{"ps", "--name", "^echo$"}, env); err != nil || !strings.Contains(out, id[:13]) {
		t.Errorf("crictl (a link to kubox) ps: %v\n%s", err, out)
	}
	pinned := func(out, image string) string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == image {
				return f[len(f)-1]
			}
		}
		return "absent"
	}
	imgs := crictl("images", "--pinned")
	if got := pinned(imgs, "kubox.test/echo"); got != "true" {
		t.Errorf("air-gap image kubox.test/echo pinned: %s, want true:\n%s", got, imgs)
	}

	// An image imported by hand is not pinned. (echo-docker.tar would not
	// do: it has the air-gap image's ID, and the CRI pins an image, not a
	// name.)
	if out, err := run(s.bin, []string{"ctr", "images", "import", filepath.Join(images, "echo-hello.tar")}, env); err != nil {
		t.Fatalf("kubox ctr images import: %v\n%s", err, out)
	}
	imgs = crictl("images", "--pinned")
	if got := pinned(imgs, "kubox.test/echo-hello"); got != "false" {
		t.Fatalf("kubox.test/echo-hello pinned: %s, want false:\n%s", got, imgs)
	}
	if !strings.Contains(s.tail(5000), "cannot pull 127.0.0.1:1/kubox-test/absent:v1 (listed in "+filepath.Join(imagesDir, "extra.txt")+")") {
		t.Errorf("the failed pull of the list's image is not reported in the log")
	}

	// (b) The kubelet's image GC under disk pressure (every image file
	// system is "full" below 99% free, and images are old enough at once):
	// the unused, unpinned image goes, the pinned ones stay, even once the
	// echo pod is evicted and no longer uses its image.
	dropins := filepath.Join(t.TempDir(), "kubelet.conf.d")
	os.MkdirAll(dropins, 0o755)
	// (0s would do nothing: the kubelet's defaulting turns a zero
	// imageMinimumGCAge into 2 minutes.)
	pressure := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nimageMinimumGCAge: 1s\n" +
		"evictionHard: {imagefs.available: \"99%\", nodefs.available: \"99%\"}\n"
	if err := os.WriteFile(filepath.Join(dropins, "90-image-gc.conf"), []byte(pressure), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Args = append(s.Args, "--kubelet-arg", "config-dir="+dropins)
	start := time.Now()
	s.StartReady()
	waitFor(t, "the image GC to remove kubox.test/echo-hello", 2*time.Minute, func() (bool, string) {
		out, err := run(s.bin, []string{"crictl", "images"}, env)
		return err == nil && !strings.Contains(out, "kubox.test/echo-hello"), out
	})
	t.Logf("unpinned image removed %s after the restart under disk pressure", time.Since(start).Round(time.Second))
	imgs = crictl("images", "--pinned")
	for _, image := range []string{"kubox.test/echo", "kubox.local/pause", "kubox.local/coredns"} {
		if got := pinned(imgs, image); got != "true" {
			t.Errorf("%s after the image GC: %s, want present and pinned:\n%s", image, got, imgs)
		}
	}
}

// firstConnectionPod connects once, with no retry, to the kubernetes
// Service and prints the reply to a plain HTTP request.
const firstConnectionPod = `apiVersion: v1
kind: Pod
metadata: {name: first, namespace: default}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: first
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [tcp, "10.43.0.1:443", --send, 'GET / HTTP/1.0\r\n\r\n', --timeout, 3s]
`
