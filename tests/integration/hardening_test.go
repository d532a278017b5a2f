package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubox-io/kubox/tests/testenv"
)

// kubeletKernelParams are the kernel parameters the kubelet wants with
// protectKernelDefaults, as kubox checks them.
var kubeletKernelParams = []struct {
	key  string
	want int
}{
	{"vm/overcommit_memory", 1}, {"vm/panic_on_oom", 0}, {"kernel/panic", 10},
	{"kernel/panic_on_oops", 1}, {"kernel/keys/root_maxkeys", 1000000}, {"kernel/keys/root_maxbytes", 25000000},
}

// plainPod passes the baseline Pod Security Standard; privilegedPod is
// refused by baseline and restricted.
const plainPod = `apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: default}
spec:
  containers:
  - name: c
    image: kubox.test/echo:v1
`

var privilegedPod = strings.Replace(plainPod, "name: plain", "name: privileged", 1) + "    securityContext: {privileged: true}\n"

// TestHardening: --profile cis refuses a host whose kernel parameters the
// kubelet would have to change, and on a host that has them it runs a
// node with no anonymous API access, no profiling, no read-only kubelet
// port, PodSecurity "restricted" outside kube-system and an audit log;
// --pod-security-admission-config-file applies the user's levels.
func TestHardening(t *testing.T) {
	t.Run("cis refuses a wrong kernel parameter", testCISWrongSysctl)
	t.Run("cis", testCIS)
	t.Run("pod security file", testPodSecurityFile)
}

// testCISWrongSysctl runs kubox in a private mount namespace where
// /proc/sys/kernel/panic reads 0; the host's own value is not touched.
func testCISWrongSysctl(t *testing.T) {
	s := newServerArgs(t, "--profile", "cis")
	s.RunDir = filepath.Join(s.Dir, "run")
	s.Args = append(s.Args, "--run-dir", s.RunDir)
	zero := filepath.Join(s.Dir, "panic")
	if err := os.WriteFile(zero, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /proc/sys/kernel/panic && exec "$@"`, zero, s.bin}, s.argv()...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("kubox server --profile cis exited 0 with kernel.panic=0; stderr:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if out, err := s.Killall(); err != nil {
			t.Errorf("kubox killall: %v\n%s", err, out)
		}
		t.Fatalf("kubox server --profile cis still ran after 30s with kernel.panic=0; stderr:\n%s", stderr.String())
	}
	t.Logf("kubox server --profile cis with kernel.panic=0: %s", strings.TrimSpace(stderr.String()))
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	want := []string{"kernel.panic is 0, want 10", `run "sysctl -w kernel.panic=10"`, "/etc/sysctl.d/90-kubelet.conf"}
	for _, w := range want {
		if len(lines) != 1 || !strings.Contains(lines[0], w) {
			t.Errorf("stderr should be one line saying %q; got:\n%s", w, stderr.String())
		}
	}
	if _, err := os.Stat(s.DataDir); err == nil {
		t.Errorf("the refused server created its data dir %s", s.DataDir)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port))
	if err != nil {
		t.Errorf("API port %d in use after the refusal: %v", s.Port, err)
	} else {
		ln.Close()
	}
	if data, _ := os.ReadFile("/proc/sys/kernel/panic"); strings.TrimSpace(string(data)) != "10" {
		t.Errorf("the host's kernel.panic reads %q after the test, want 10", strings.TrimSpace(string(data)))
	}
}

// testCIS runs one node with --profile cis (from the config file, as an
// installed service has it) and checks what the profile promises.
func testCIS(t *testing.T) {
	for _, p := range kubeletKernelParams {
		name := strings.ReplaceAll(p.key, "/", ".")
		data, err := os.ReadFile(filepath.Join("/proc/sys", p.key))
		if err != nil {
			t.Skipf("this host has no kernel parameter %s (%v): --profile cis cannot run here", name, err)
		}
		if got := strings.TrimSpace(string(data)); got != strconv.Itoa(p.want) {
			t.Skipf("this host's %s is %s, not %d as --profile cis needs; the test does not change the host's kernel parameters", name, got, p.want)
		}
	}
	testenv.LockNodes(t)
	s := newNodeServer(t)
	if err := os.WriteFile(s.ConfigFile, []byte("profile: cis\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.StartReady()
	waitNodeReady(t, s)

	if code := anonymousGet(t, s.Port, "/version"); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET /version: HTTP %d, want 401", code)
	}
	// The join routes authenticate by themselves: a new node still gets
	// the CA bundle it checks against its token.
	if code := anonymousGet(t, s.Port, "/v1-kubox/cacerts"); code != http.StatusOK {
		t.Errorf("GET /v1-kubox/cacerts without credentials: HTTP %d, want 200", code)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:10250", 2*time.Second); err != nil {
		t.Errorf("the kubelet's port 10250 does not answer (%v): the read-only port check below proves nothing", err)
	} else {
		conn.Close()
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:10255", 2*time.Second); err == nil {
		conn.Close()
		t.Errorf("something listens on the kubelet's read-only port 10255")
	}
	if code := adminGet(t, s, "", "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ as admin: HTTP %d, want 404", code)
	}
	// Nor do the kubelet (whose answer for a disabled profiling endpoint
	// is 405) and metrics-server, which would serve the admin one.
	nodeIP := strings.TrimSpace(s.MustKubectl("get", "nodes", "-o", `jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}`))
	for port, want := range map[int]int{10250: http.StatusMethodNotAllowed, 10251: http.StatusNotFound} {
		host := "https://" + net.JoinHostPort(nodeIP, strconv.Itoa(port))
		if code := adminGet(t, s, host, "/debug/pprof/"); code != want {
			t.Errorf("GET %s/debug/pprof/ as admin: HTTP %d, want %d", host, code, want)
		}
	}
	audit := filepath.Join(s.DataDir, "server", "logs", "audit.log")
	if fi, err := os.Stat(audit); err != nil || fi.Size() == 0 {
		t.Errorf("audit log %s: %v (empty: %v)", audit, err, err == nil && fi.Size() == 0)
	}

	// Restricted outside kube-system; CoreDNS in kube-system runs.
	refused := podRefused(t, s, privilegedPod)
	t.Logf("privileged pod in default: %s", refused)
	for _, w := range []string{`violates PodSecurity "restricted:latest"`, "privileged"} {
		if !strings.Contains(refused, w) {
			t.Errorf("privileged pod in default refused with %q, want it to say %q", refused, w)
		}
	}
	// The aggregated metrics API still answers the API server.
	waitFor(t, "the metrics API available", 2*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		return err == nil && out == "True", out
	})
	waitFor(t, "CoreDNS Ready in kube-system", 3*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
			`jsonpath={range .items[*]}{.status.phase}/{.status.conditions[?(@.type=="Ready")].status} {end}`)
		return err == nil && strings.Contains(out, "Running/True"), out
	})
}

// adminGet requests path with the admin's credentials from host, or from
// the API server when host is "" (host's serving certificate is not
// checked: its identity is not under test here).
func adminGet(t *testing.T, s *server, host, path string) int {
	t.Helper()
	rc, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		rc.Host = host
		rc.TLSClientConfig.CAData, rc.TLSClientConfig.CAFile, rc.TLSClientConfig.Insecure = nil, "", true
	}
	c, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 10 * time.Second
	resp, err := c.Get(rc.Host + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// podRefused creates the pod and returns the API's refusal, waiting out the
// first seconds in which the namespace has no service account yet.
func podRefused(t *testing.T, s *server, manifest string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	var refusal string
	waitFor(t, "the pod refused by PodSecurity", time.Minute, func() (bool, string) {
		out, err := s.Kubectl("create", "-f", f)
		if err == nil {
			t.Fatalf("pod admitted:\n%s", manifest)
		}
		refusal = lastLine(out)
		return strings.Contains(refusal, "PodSecurity"), refusal
	})
	return refusal
}

// testPodSecurityFile: the user's AdmissionConfiguration enforcing
// "baseline" refuses a privileged pod and admits a plain one; a malformed
// file stops the server before it starts, in one line naming the file.
func testPodSecurityFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "psa.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration: {apiVersion: pod-security.admission.config.k8s.io/v1, kind: PodSecurityConfiguration,
    defaults: {enforce: baseline, enforce-version: latest}, exemptions: {namespaces: [kube-system]}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	malformed := filepath.Join(dir, "malformed.yaml")
	if err := os.WriteFile(malformed, []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  configuration: {defaults: {enforce: strict}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	bad := newServer(t, "--pod-security-admission-config-file", malformed)
	out, err := run(bad.bin, bad.argv(), nil)
	if err == nil {
		t.Errorf("kubox server started with a malformed --pod-security-admission-config-file")
	}
	t.Logf("malformed file: %s", strings.TrimSpace(out))
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "invalid --pod-security-admission-config-file "+malformed+": ") {
		t.Errorf("want one line naming %s; got:\n%s", malformed, out)
	}
	if _, err := os.Stat(bad.DataDir); err == nil {
		t.Errorf("the refused server created its data dir %s", bad.DataDir)
	}

	s := newServer(t, "--pod-security-admission-config-file", file)
	s.StartReady()
	refused := podRefused(t, s, privilegedPod)
	if !strings.Contains(refused, `violates PodSecurity "baseline:latest"`) || !strings.Contains(refused, "privileged") {
		t.Errorf("privileged pod refused with %q, want a baseline PodSecurity refusal naming privileged", refused)
	}
	plain := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(plain, []byte(plainPod), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Kubectl("create", "-f", plain); err != nil {
		t.Errorf("plain pod refused under baseline: %v\n%s", err, out)
	}
}
