// Package integration runs the kubox binary as a user would, one node per
// test, and checks what a user would check: kubectl's answers, files on
// disk, listening sockets, exit codes and error lines.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubox-io/kubox/tests/testenv"
)

// defaultReady bounds how long a server may take to become ready.
const defaultReady = 2 * time.Minute

// server is one `kubox server` process in its own temp dirs.
type server struct {
	t          *testing.T
	bin        string
	Dir        string
	DataDir    string
	Kubeconfig string
	ConfigFile string
	RunDir     string
	Port       int
	Args       []string

	cmd    *exec.Cmd
	logf   *os.File
	logAt  int64 // the log's size when the process last started
	exited chan struct{}
	err    error
}

// newServer returns a control-plane-only server (--disable-agent).
func newServer(t *testing.T, args ...string) *server {
	t.Helper()
	return newServerArgs(t, append([]string{"--disable-agent"}, args...)...)
}

// newNodeServer returns a server that also runs a node, with its own run dir.
func newNodeServer(t *testing.T, args ...string) *server {
	t.Helper()
	testenv.LockNodes(t)
	s := newServerArgs(t, args...)
	s.RunDir = filepath.Join(s.Dir, "run")
	// Pods' upstream resolver: the node's own bridge address, so that
	// CoreDNS never forwards to the host's resolver during tests.
	resolv := filepath.Join(s.Dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 10.42.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Args = append(s.Args, "--run-dir", s.RunDir, "--resolv-conf", resolv)
	// Containers outlive kubox by design: take the node down completely.
	t.Cleanup(func() {
		if out, err := s.Killall(); err != nil {
			t.Errorf("kubox killall: %v\n%s", err, out)
		}
	})
	return s
}

// Killall runs `kubox killall` for this server's node.
func (s *server) Killall() (string, error) {
	return run(s.bin, []string{"killall", "--data-dir", s.DataDir, "--run-dir", s.RunDir}, nil)
}

func newServerArgs(t *testing.T, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{
		t:          t,
		bin:        kuboxBin(t),
		Dir:        dir,
		DataDir:    filepath.Join(dir, "data"),
		Kubeconfig: filepath.Join(dir, "kubeconfig.yaml"),
		ConfigFile: filepath.Join(dir, "config.yaml"),
		Port:       freePort(t),
		Args:       args,
	}
	if err := os.WriteFile(s.ConfigFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.dumpLog(60)
		}
	})
	return s
}

func (s *server) argv() []string {
	return append([]string{"server",
		"--config", s.ConfigFile,
		"--data-dir", s.DataDir,
		"--https-listen-port", fmt.Sprint(s.Port),
		"--write-kubeconfig", s.Kubeconfig,
	}, s.Args...)
}

// Start launches the server; Stop or the test's cleanup ends it.
func (s *server) Start() {
	s.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.logf = f
	if fi, err := f.Stat(); err == nil {
		s.logAt = fi.Size()
	}
	s.cmd = exec.Command(s.bin, s.argv()...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		s.err = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
}

// StartReady starts the server and waits for /readyz.
func (s *server) StartReady() {
	s.t.Helper()
	s.Start()
	s.WaitReady(defaultReady)
}

// WaitReady polls /readyz as the admin until it answers ok.
func (s *server) WaitReady(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("kubox server exited before it was ready: %v\n%s", s.err, s.tail(30))
		default:
		}
		if _, err := os.Stat(s.Kubeconfig); err == nil {
			if last = s.readyz(); last == nil {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("kubox server not ready after %s: %v\n%s", timeout, last, s.tail(30))
}

func (s *server) readyz() error {
	rc, err := s.RESTConfig()
	if err != nil {
		return err
	}
	c, err := rest.HTTPClientFor(rc)
	if err != nil {
		return err
	}
	c.Timeout = 5 * time.Second
	resp, err := c.Get(rc.Host + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}

// Stop sends SIGTERM and waits; a server that does not stop in time is
// killed and the test fails.
func (s *server) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("kubox server did not stop within 60s of SIGTERM")
	}
	s.logf.Close()
}

// ExitCode is the exit status after Stop.
func (s *server) ExitCode() int {
	<-s.exited
	return s.cmd.ProcessState.ExitCode()
}

// Kill ends the server with SIGKILL, as a crash or power loss would.
func (s *server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.logf.Close()
}

// PID of the running server.
func (s *server) PID() int { return s.cmd.Process.Pid }

func (s *server) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
}

func (s *server) Client() kubernetes.Interface {
	s.t.Helper()
	rc, err := s.RESTConfig()
	if err != nil {
		s.t.Fatal(err)
	}
	rc.QPS, rc.Burst = 200, 400
	return kubernetes.NewForConfigOrDie(rc)
}

// Kubectl runs the embedded kubectl against this server.
func (s *server) Kubectl(args ...string) (string, error) {
	return run(s.bin, append([]string{"kubectl", "--kubeconfig", s.Kubeconfig}, args...), nil)
}

// MustKubectl fails the test when kubectl fails.
func (s *server) MustKubectl(args ...string) string {
	s.t.Helper()
	out, err := s.Kubectl(args...)
	if err != nil {
		s.t.Fatalf("kubox kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *server) tail(n int) string { return tailFile(filepath.Join(s.Dir, "server.log"), n) }

// tailFile is the last n lines of a log file.
func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logSinceStart is what the process logged since it last started.
func (s *server) logSinceStart() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if int64(len(data)) < s.logAt {
		return ""
	}
	return string(data[s.logAt:])
}

func (s *server) dumpLog(n int) {
	s.t.Logf("last lines of %s/server.log:\n%s", s.Dir, s.tail(n))
}

// run executes a command with a time limit. It returns the standard
// output, and on failure the standard error after it, so that callers can
// parse output and still see why a command failed.
func run(bin string, args []string, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return last
}

// anonymousGet requests path from the server without credentials.
func anonymousGet(t *testing.T, port int, path string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // identity is not under test here
	}}
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatalf("anonymous GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func kuboxBin(t *testing.T) string { return testenv.KuboxBin(t, "test-integration") }

func freePort(t *testing.T) int { return testenv.FreePort(t) }
