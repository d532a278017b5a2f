// Package install runs install.sh as a user would: piped from curl out of a
// release folder served on loopback, then the service it wrote is run, and
// its uninstall script must leave the host as it was. It also checks the
// refusals: a corrupt download, an unsupported architecture, no curl or
// wget, not root, a missing pre-placed binary. Run as root (make
// test-install); no service manager is used.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubox-io/kubox/pkg/bundle"
	"github.com/kubox-io/kubox/tests/testenv"
)

// cniNet is where host-local kept kubox pods' addresses before they moved
// to the run dir; the uninstaller still clears its node's entries there.
const cniNet = "/var/lib/cni/networks/kubox"

// nodeName is the name the installed service's environment file gives the node.
const nodeName = "kubox-install-test"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the installer tests need root: run them with `sudo make test-install`")
	}
}

func installScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../install.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// releaseArch is the release name of this machine's architecture.
func releaseArch(t *testing.T) string {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64", "arm64", "arm":
		return runtime.GOARCH
	}
	t.Skipf("kubox is not released for %s", runtime.GOARCH)
	return ""
}

var (
	sumOnce sync.Once
	sumHex  string
	sumErr  error
)

func binarySHA256(t *testing.T, bin string) string {
	t.Helper()
	sumOnce.Do(func() { sumHex, sumErr = bundle.FileSum(bin) })
	if sumErr != nil {
		t.Fatal(sumErr)
	}
	return sumHex
}

// serveRelease serves a release folder on 127.0.0.1: kubox-<arch>, its
// sha256sum-<arch>.txt and install.sh. With corrupt, the binary served is
// not the one the checksum names.
func serveRelease(t *testing.T, corrupt bool) *httptest.Server {
	t.Helper()
	bin, arch := testenv.KuboxBin(t, "test-install"), releaseArch(t)
	dir := t.TempDir()
	if corrupt {
		if err := os.WriteFile(filepath.Join(dir, "kubox-"+arch), []byte("#!/bin/sh\necho altered\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Symlink(bin, filepath.Join(dir, "kubox-"+arch)); err != nil {
		t.Fatal(err)
	}
	sums := fmt.Sprintf("%s  kubox-%s\n", binarySHA256(t, bin), arch)
	if err := os.WriteFile(filepath.Join(dir, "sha256sum-"+arch+".txt"), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(installScript(t), filepath.Join(dir, "install.sh")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

// layout is where one install puts things: every directory the installer
// can be pointed at, inside one temp dir.
type layout struct {
	Root, Bin, Systemd, OpenRC, Completion, Config, Data, Run, Tmp string
}

func newLayout(t *testing.T) layout {
	t.Helper()
	root := t.TempDir()
	l := layout{
		Root:       root,
		Bin:        filepath.Join(root, "bin"),
		Systemd:    filepath.Join(root, "systemd"),
		OpenRC:     filepath.Join(root, "init.d"),
		Completion: filepath.Join(root, "bash-completion"),
		Config:     filepath.Join(root, "etc-kubox"),
		Data:       filepath.Join(root, "data"),
		Run:        filepath.Join(root, "run"),
		Tmp:        filepath.Join(root, "tmp"),
	}
	for _, d := range []string{l.Bin, l.Tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// env is the installer's environment: this layout, the given init system,
// no service manager calls, and only the given PATH.
func (l layout) env(path, init string, extra ...string) []string {
	return append([]string{
		"PATH=" + path,
		"TMPDIR=" + l.Tmp,
		"INSTALL_KUBOX_BIN_DIR=" + l.Bin,
		"INSTALL_KUBOX_SYSTEMD_DIR=" + l.Systemd,
		"INSTALL_KUBOX_OPENRC_DIR=" + l.OpenRC,
		"INSTALL_KUBOX_BASH_COMPLETION_DIR=" + l.Completion,
		"INSTALL_KUBOX_CONFIG_DIR=" + l.Config,
		"INSTALL_KUBOX_INIT=" + init,
		"INSTALL_KUBOX_SKIP_ENABLE=true",
		"INSTALL_KUBOX_SKIP_START=true",
	}, extra...)
}

// hostTools is a PATH directory with links to every command of the host's
// PATH except the excluded names.
func hostTools(t *testing.T, exclude ...string) string {
	t.Helper()
	dir := t.TempDir()
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[e] = true
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			name := e.Name()
			if skip[name] {
				continue
			}
			// The first directory on the PATH wins, as for the shell.
			_ = os.Symlink(filepath.Join(d, name), filepath.Join(dir, name))
		}
	}
	return dir
}

// fakeCommands is a PATH directory of small scripts, name → body.
func fakeCommands(t *testing.T, cmds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range cmds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type result struct {
	out  string
	code int
}

func (r result) lines() []string {
	var ls []string
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

func runSh(t *testing.T, env []string, stdin io.Reader, cred *syscall.Credential, script string) result {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %q: %v", script, err)
	}
	return result{out: out.String(), code: cmd.ProcessState.ExitCode()}
}

// curlInstall runs the installer the documented way: curl -sfL … | sh -.
func curlInstall(t *testing.T, srv *httptest.Server, env []string) result {
	t.Helper()
	env = append(env, "INSTALL_KUBOX_DOWNLOAD_URL="+srv.URL)
	return runSh(t, env, nil, nil, fmt.Sprintf("curl -sfL %s/install.sh | sh -", srv.URL))
}

// pipeInstall feeds install.sh to `sh -` on stdin, with no HTTP server.
func pipeInstall(t *testing.T, env []string, cred *syscall.Credential) result {
	t.Helper()
	f, err := os.Open(installScript(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return runSh(t, env, f, cred, "sh -")
}

func mustSucceed(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s", what, r.code, r.out)
	}
	for _, l := range r.lines() {
		if !strings.HasPrefix(l, "[INFO] ") {
			t.Errorf("%s: unexpected line %q", what, l)
		}
	}
	t.Logf("%s:\n%s", what, r.out)
}

// mustRefuse: a non-zero exit, and the only [ERROR] line says want.
// oneLine asks that it be the only line at all.
func mustRefuse(t *testing.T, r result, want string, oneLine bool) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("installer succeeded; want a refusal mentioning %q\n%s", want, r.out)
	}
	var errs []string
	for _, l := range r.lines() {
		if strings.HasPrefix(l, "[ERROR] ") {
			errs = append(errs, l)
		} else if oneLine || !strings.HasPrefix(l, "[INFO] ") {
			t.Errorf("unexpected line %q", l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], want) {
		t.Fatalf("want one [ERROR] line mentioning %q, got:\n%s", want, r.out)
	}
	t.Logf("refused: %s", errs[0])
}

// tree lists every path below root, as root-relative names.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	_ = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			names = append(names, rel)
		}
		return nil
	})
	sort.Strings(names)
	return names
}

func sameList(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// --- reading what the installer wrote ----------------------------------

// execStart returns the argv of a unit's ExecStart, unquoted as systemd
// does for the forms the installer writes.
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	collecting := false
	for _, l := range strings.Split(string(data), "\n") {
		if !collecting && !strings.HasPrefix(l, "ExecStart=") {
			continue
		}
		collecting = true
		l = strings.TrimSpace(strings.TrimPrefix(l, "ExecStart="))
		if strings.HasSuffix(l, `\`) {
			line += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		line += l
		break
	}
	if line == "" {
		t.Fatalf("%s has no ExecStart", unit)
	}
	var argv []string
	var word strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			word.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				argv = append(argv, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		argv = append(argv, word.String())
	}
	for i, a := range argv {
		argv[i] = strings.NewReplacer("%%", "%", "$$", "$").Replace(a)
	}
	return argv
}

// envFile reads KEY="value" lines as the installer writes them.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		vars[k] = b.String()
	}
	return vars
}

// shellcheck lints the scripts the installer wrote, when shellcheck is
// installed (make deps installs it).
func shellcheck(t *testing.T, files ...string) {
	t.Helper()
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("shellcheck not installed: generated scripts not linted")
		return
	}
	if out, err := exec.Command("shellcheck", append([]string{"-s", "sh"}, files...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %o, want %o", path, fi.Mode().Perm(), want)
	}
}

func linkTarget(path string) string {
	target, err := os.Readlink(path)
	if err != nil {
		return ""
	}
	return target
}

// --- the host listing -----------------------------------------------------

// hostListing names everything a kubox install and node can leave behind:
// the install's files and links, processes, interfaces, iptables chains and
// rules, nftables tables, mounts, network namespaces, the paths upstream
// components write regardless of kubox's dirs, and kubox's pod cgroup.
func hostListing(t *testing.T, l layout) []string {
	t.Helper()
	var items []string
	add := func(format string, args ...any) { items = append(items, fmt.Sprintf(format, args...)) }

	// The install's own files.
	entries, _ := os.ReadDir(l.Bin)
	for _, e := range entries {
		p := filepath.Join(l.Bin, e.Name())
		if strings.HasPrefix(e.Name(), "kubox") || strings.HasPrefix(e.Name(), ".kubox") || strings.HasPrefix(filepath.Base(linkTarget(p)), "kubox") {
			add("file %s", p)
		}
	}
	for _, d := range []string{l.Systemd, l.OpenRC, l.Completion} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "kubox") {
				add("file %s", filepath.Join(d, e.Name()))
			}
		}
	}
	for _, d := range []string{l.Config, l.Data, l.Run} {
		if _, err := os.Lstat(d); err == nil {
			add("dir %s", d)
		}
	}
	if names := tree(t, l.Tmp); len(names) > 0 {
		add("temp files %v", names)
	}

	// Processes started from the install or using its dirs.
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || e.Name() == fmt.Sprint(os.Getpid()) {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		args := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		if strings.HasPrefix(exe, l.Root) || strings.Contains(args, l.Root) || strings.Contains(exe, "containerd-shim") {
			add("process %s %s", e.Name(), args)
		}
	}

	// Interfaces.
	ifaces, _ := os.ReadDir("/sys/class/net")
	for _, e := range ifaces {
		switch n := e.Name(); {
		case n == "cni0", n == "flannel.1", n == "flannel-wg", n == "kube-ipvs0", strings.HasPrefix(n, "veth"):
			add("interface %s", n)
		}
	}

	// iptables chains and the rules that jump to them.
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(tool).Output()
		if err != nil {
			continue
		}
		table := ""
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":KUBE-"), strings.HasPrefix(line, ":CNI-"), strings.HasPrefix(line, ":FLANNEL"):
				add("%s %s chain %s", tool, table, strings.Fields(line[1:])[0])
			case strings.HasPrefix(line, "-A") && (strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, "FLANNEL")):
				add("%s %s rule %s", tool, table, line)
			}
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "kube") || strings.Contains(line, "flannel") {
				add("nftables %s", line)
			}
		}
	}

	// Mounts.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		for _, p := range []string{l.Root, "/var/lib/kubelet", "/run/netns", "/var/run/netns", "/run/containerd", "/run/kubox", "kubox"} {
			if strings.Contains(mp, p) {
				add("mount %s", mp)
				break
			}
		}
	}

	// Network namespaces and paths upstream writes outside kubox's dirs.
	for _, d := range []string{"/run/netns", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/var/lib/kubelet", "/run/containerd", "/run/kubox"} {
		for _, n := range tree(t, d) {
			add("path %s", filepath.Join(d, n))
		}
	}

	// The pod cgroup kubox makes below its own, which is this test's.
	cg, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrl := strings.TrimPrefix(parts[1], "name=")
		if ctrl == "" {
			ctrl = "unified"
		}
		p := filepath.Join("/sys/fs/cgroup", ctrl, parts[2], "kubox")
		if _, err := os.Stat(p); err == nil {
			add("cgroup %s", p)
		}
	}
	sort.Strings(items)
	return items
}

// added is what after has that before had not.
func added(before, after []string) []string {
	had := map[string]bool{}
	for _, b := range before {
		had[b] = true
	}
	var out []string
	for _, a := range after {
		if !had[a] {
			out = append(out, a)
		}
	}
	return out
}

// --- the node ----------------------------------------------------------------

// node is the installed service's command line, run by the test.
type node struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startNode(t *testing.T, argv []string, env map[string]string, logPath string) *node {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-n.exited
		}
		if t.Failed() {
			t.Logf("kubox log tail (gRPC lines left out):\n%s", tail(n.log, 40))
		}
	})
	return n
}

func (n *node) running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func tail(path string, lines int) string {
	data, _ := os.ReadFile(path)
	var ls []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, "] [core] ") {
			ls = append(ls, l)
		}
	}
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// waitFor polls check until it reports done, the node exits or time runs out.
func waitFor(t *testing.T, n *node, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if !n.running() {
			t.Fatalf("kubox exited while waiting for %s\n%s", what, tail(n.log, 40))
		}
		var ok bool
		if ok, last = check(); ok {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("no %s after %s (last: %s)", what, timeout, last)
}

func kubectl(kubectlPath, kubeconfig string, args ...string) (string, error) {
	cmd := exec.Command(kubectlPath, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// --- tests -----------------------------------------------------------------

// TestInstallRunUninstall: curl | sh installs a systemd service whose
// command line brings up a Ready node; a second run upgrades in place; the
// uninstall script then leaves nothing of kubox on the host and nothing
// else removed.
func TestInstallRunUninstall(t *testing.T) {
	requireRoot(t)
	bin := testenv.KuboxBin(t, "test-install")
	testenv.LockNodes(t)
	srv := serveRelease(t, false)
	l := newLayout(t)

	// Things next to the install that are not kubox's.
	sentinels := []string{filepath.Join(l.Bin, "sentinel"), filepath.Join(l.Root, "sentinel"), filepath.Join(l.Systemd, "sentinel.service")}
	if err := os.MkdirAll(l.Systemd, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range sentinels {
		if err := os.WriteFile(s, []byte("not kubox's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An existing ctr is left alone; kubectl is not on this PATH, so it is linked.
	otherCtr := filepath.Join(l.Bin, "ctr")
	if err := os.Symlink("/bin/true", otherCtr); err != nil {
		t.Fatal(err)
	}
	path := hostTools(t, "kubectl", "crictl", "ctr")

	resolv := filepath.Join(l.Root, "resolv.conf") // pods' upstream: nothing off the host
	if err := os.WriteFile(resolv, []byte("nameserver 10.42.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	installEnv := l.env(path, "systemd",
		fmt.Sprintf("INSTALL_KUBOX_EXEC=--data-dir %s --run-dir %s --https-listen-port %d --resolv-conf %s", l.Data, l.Run, port, resolv),
		"KUBOX_NODE_NAME="+nodeName)

	before := hostListing(t, l)
	t.Logf("host listing before the install: %d entries (leftovers of other runs are not this test's)", len(before))

	start := time.Now()
	mustSucceed(t, "install", curlInstall(t, srv, installEnv))
	t.Logf("install took %s", time.Since(start).Round(time.Millisecond))

	// The binary is the release's, and the links are right.
	kubox := filepath.Join(l.Bin, "kubox")
	if sum, err := bundle.FileSum(kubox); err != nil || sum != binarySHA256(t, bin) {
		t.Fatalf("%s is not the released binary (sha256 %s, %v)", kubox, sum, err)
	}
	checkMode(t, kubox, 0o755)
	kubectlLink := filepath.Join(l.Bin, "kubectl")
	if got := linkTarget(kubectlLink); got != kubox {
		t.Errorf("%s links to %q, want %s", kubectlLink, got, kubox)
	}
	if got := linkTarget(otherCtr); got != "/bin/true" {
		t.Errorf("the existing %s was changed: links to %q", otherCtr, got)
	}
	if got := linkTarget(filepath.Join(l.Bin, "crictl")); got != "" && got != kubox {
		t.Errorf("crictl links to %q", got)
	}
	for _, s := range []string{"kubox-uninstall.sh", "kubox-killall.sh"} {
		p := filepath.Join(l.Bin, s)
		checkMode(t, p, 0o755)
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", p, err, out)
		}
	}
	shellcheck(t, filepath.Join(l.Bin, "kubox-uninstall.sh"), filepath.Join(l.Bin, "kubox-killall.sh"))

	// The unit: valid for systemd, with the expected service settings.
	unit := filepath.Join(l.Systemd, "kubox.service")
	envPath := filepath.Join(l.Systemd, "kubox.service.env")
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
	unitText, _ := os.ReadFile(unit)
	for _, want := range []string{"Type=exec", "KillMode=process", "Delegate=yes", "Restart=always", "LimitNOFILE=", "WantedBy=multi-user.target", "EnvironmentFile=-" + envPath} {
		if !strings.Contains(string(unitText), want) {
			t.Errorf("%s lacks %s", unit, want)
		}
	}
	checkMode(t, envPath, 0o600)
	env := envFile(t, envPath)
	if env["KUBOX_NODE_NAME"] != nodeName || len(env) != 1 {
		t.Errorf("%s holds %v, want only KUBOX_NODE_NAME=%s", envPath, env, nodeName)
	}
	argv := execStart(t, unit)
	t.Logf("ExecStart: %q", argv)
	if len(argv) < 2 || argv[0] != kubox || argv[1] != "server" {
		t.Fatalf("ExecStart %q does not run %s server", argv, kubox)
	}
	kubeconfig := filepath.Join(l.Config, "kubox.yaml")
	if !strings.Contains(strings.Join(argv, " "), "--write-kubeconfig "+kubeconfig) {
		t.Errorf("ExecStart %q does not write the kubeconfig into INSTALL_KUBOX_CONFIG_DIR", argv)
	}

	// Run the service's command line as systemd would, until the node is Ready.
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			if out, err := exec.Command(bin, "killall", "--data-dir", l.Data, "--run-dir", l.Run).CombinedOutput(); err != nil {
				t.Errorf("kubox killall: %v\n%s", err, out)
			}
		}
	})
	n := startNode(t, argv, env, filepath.Join(l.Root, "kubox.log"))
	started := time.Now()
	waitFor(t, n, "Ready node "+nodeName, 2*time.Minute, func() (bool, string) {
		out, err := kubectl(kubectlLink, kubeconfig, "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True", out
	})
	t.Logf("node %s Ready %s after start", nodeName, time.Since(started).Round(time.Millisecond))
	// A running pod, so that there are pod networks, mounts and cgroups to clean.
	waitFor(t, n, "running CoreDNS pod", 2*time.Minute, func() (bool, string) {
		out, err := kubectl(kubectlLink, kubeconfig, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[*].status.phase}")
		return err == nil && out == "Running", out
	})
	running := added(before, hostListing(t, l))
	t.Logf("what the install and the running node added:\n%s", strings.Join(running, "\n"))
	for _, want := range []string{"interface cni0", "interface flannel.1"} {
		if !contains(running, want) {
			t.Errorf("the running node shows no %s", want)
		}
	}

	// Re-running the installer upgrades in place: the binary is replaced by a
	// new file (the running node keeps its old one), state stays.
	oldInode := inode(t, kubox)
	mustSucceed(t, "upgrade", curlInstall(t, srv, installEnv))
	if inode(t, kubox) == oldInode {
		t.Errorf("%s was rewritten in place, not replaced", kubox)
	}
	if names := tree(t, l.Tmp); len(names) > 0 {
		t.Errorf("the installer left temp files: %v", names)
	}
	if _, err := os.Stat(filepath.Join(l.Data, "server", "db", "state.db")); err != nil {
		t.Errorf("cluster state gone after the upgrade: %v", err)
	}
	if out, err := kubectl(kubectlLink, kubeconfig, "get", "node", nodeName); err != nil {
		t.Errorf("kubectl after the upgrade: %v\n%s", err, out)
	}

	// Uninstall: the node stops, and nothing kubox's is left.
	r := runSh(t, []string{"PATH=" + path}, nil, nil, filepath.Join(l.Bin, "kubox-uninstall.sh"))
	t.Logf("uninstall (exit %d):\n%s", r.code, r.out)
	if r.code != 0 {
		t.Fatalf("uninstall failed")
	}
	uninstalled = true
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("kubox still runs after the uninstall")
	}
	after := hostListing(t, l)
	if left := added(before, after); len(left) > 0 {
		t.Errorf("left after the uninstall:\n%s", strings.Join(left, "\n"))
	} else {
		t.Logf("nothing left after the uninstall (%d entries checked while running)", len(running))
	}
	var gone []string
	for _, g := range added(after, before) {
		// host-local's bookkeeping of the kubox network goes with its last address.
		if g == "path "+cniNet || g == "path "+cniNet+"/lock" || strings.HasPrefix(g, "path "+cniNet+"/last_reserved_ip") {
			continue
		}
		gone = append(gone, g)
	}
	if len(gone) > 0 {
		t.Errorf("the uninstall removed what was there before the install:\n%s", strings.Join(gone, "\n"))
	}
	for _, s := range sentinels {
		if _, err := os.Stat(s); err != nil {
			t.Errorf("the uninstall removed %s, which is not kubox's", s)
		}
	}
	if got := linkTarget(otherCtr); got != "/bin/true" {
		t.Errorf("the uninstall removed or changed %s (links to %q)", otherCtr, got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestChecksumMismatch: a download that does not match its checksum is
// refused with one line, and nothing is installed, with curl and with wget.
func TestChecksumMismatch(t *testing.T) {
	requireRoot(t)
	srv := serveRelease(t, true)
	for _, tc := range []struct{ name, without string }{{"curl", "wget"}, {"wget", "curl"}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			sentinel := filepath.Join(l.Bin, "sentinel")
			if err := os.WriteFile(sentinel, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			before := tree(t, l.Root)
			env := append(l.env(hostTools(t, tc.without), "systemd"), "INSTALL_KUBOX_DOWNLOAD_URL="+srv.URL)
			r := pipeInstall(t, env, nil)
			mustRefuse(t, r, "checksum mismatch for kubox-"+releaseArch(t), false)
			if after := tree(t, l.Root); !sameList(before, after) {
				t.Errorf("a refused install changed %s:\nbefore %v\nafter  %v", l.Root, before, after)
			}
		})
	}
}

// TestAirGap: with INSTALL_KUBOX_SKIP_DOWNLOAD=true the binary already in
// the bin dir is installed with no network tools and no server, here with
// an openrc service; links follow INSTALL_KUBOX_SYMLINK.
func TestAirGap(t *testing.T) {
	requireRoot(t)
	bin := testenv.KuboxBin(t, "test-install")
	l := newLayout(t)
	kubox := filepath.Join(l.Bin, "kubox")
	if err := os.Link(bin, kubox); err != nil {
		copyFile(t, bin, kubox)
	}
	fake := fakeCommands(t, map[string]string{"kubectl": "exit 0"})
	path := fake + ":" + hostTools(t, "curl", "wget", "kubectl", "crictl", "ctr")
	env := l.env(path, "openrc",
		"INSTALL_KUBOX_SKIP_DOWNLOAD=true",
		"INSTALL_KUBOX_EXEC=server --data-dir "+l.Data+" --node-label site=factory-floor",
		"KUBOX_TOKEN=s3cr\"et$x")
	mustSucceed(t, "air-gapped install", pipeInstall(t, env, nil))

	script := filepath.Join(l.OpenRC, "kubox")
	checkMode(t, script, 0o755)
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", script, err, out)
	}
	shellcheck(t, script, filepath.Join(l.Bin, "kubox-uninstall.sh"), filepath.Join(l.Bin, "kubox-killall.sh"))
	text, _ := os.ReadFile(script)
	for _, want := range []string{"#!/sbin/openrc-run", "supervisor=supervise-daemon", "command='" + kubox + "'", "command_args=", "depend()", "respawn_max=0"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("%s lacks %s", script, want)
		}
	}
	// What openrc would run: the script sourced, command_args evaluated.
	out, err := exec.Command("sh", "-c", `. "$1" && eval "set -- $command_args" && printf '%s\n' "$command" "$@" "$KUBOX_TOKEN"`, "sh", script).Output()
	if err != nil {
		t.Fatalf("sourcing %s: %v", script, err)
	}
	want := []string{kubox, "server", "--data-dir", l.Data, "--node-label", "site=factory-floor",
		"--config", filepath.Join(l.Config, "config.yaml"), "--write-kubeconfig", filepath.Join(l.Config, "kubox.yaml"), `s3cr"et$x`}
	if got := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); !sameList(got, want) {
		t.Errorf("openrc would run %q, want %q", got, want)
	}
	checkMode(t, filepath.Join(l.Config, "kubox.env"), 0o600)
	checkMode(t, filepath.Join(l.Config, "config.yaml"), 0o600) // --config must name a file

	// kubectl is on the PATH, so only ctr is linked; force links kubectl too.
	if got := linkTarget(filepath.Join(l.Bin, "ctr")); got != kubox {
		t.Errorf("ctr links to %q, want %s", got, kubox)
	}
	if _, err := os.Lstat(filepath.Join(l.Bin, "kubectl")); err == nil {
		t.Errorf("kubectl was linked although one is on the PATH")
	}
	mustSucceed(t, "install with INSTALL_KUBOX_SYMLINK=force", pipeInstall(t, append(env, "INSTALL_KUBOX_SYMLINK=force"), nil))
	if got := linkTarget(filepath.Join(l.Bin, "kubectl")); got != kubox {
		t.Errorf("with INSTALL_KUBOX_SYMLINK=force kubectl links to %q, want %s", got, kubox)
	}
	uninstall, _ := os.ReadFile(filepath.Join(l.Bin, "kubox-uninstall.sh"))
	for _, want := range []string{"DATA_DIR=" + l.Data, "CONFIG_DIR=" + l.Config, "SERVICE_FILE=" + script} {
		if !bytes.Contains(uninstall, []byte(want)) && !bytes.Contains(uninstall, []byte(strings.Replace(want, "=", "='", 1)+"'")) {
			t.Errorf("kubox-uninstall.sh does not record %s", want)
		}
	}
	recorded := manifest(t, l, "kubox")
	for _, want := range []string{"file " + script, "file " + filepath.Join(l.Config, "kubox.env"), "dir " + l.Data, "link " + filepath.Join(l.Bin, "kubectl")} {
		if !slices.Contains(recorded, want) {
			t.Errorf("the manifest lacks %q:\n%s", want, strings.Join(recorded, "\n"))
		}
	}
	if _, err := os.Stat("/var/log/kubox.log"); err != nil && !slices.Contains(recorded, "file /var/log/kubox.log") {
		t.Errorf("the manifest lacks the openrc service's log, /var/log/kubox.log")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals: each precondition that fails gives exactly one [ERROR]
// line, a non-zero exit and no change.
func TestRefusals(t *testing.T) {
	requireRoot(t)
	tools := hostTools(t)
	noDownloader := hostTools(t, "curl", "wget")
	riscv := fakeCommands(t, map[string]string{"uname": `[ "$1" = -m ] && echo riscv64 || exec /bin/uname "$@"`})
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	for _, tc := range []struct {
		name  string
		path  string
		extra []string
		cred  *syscall.Credential
		want  string
	}{
		{"unsupported-arch", riscv + ":" + tools, nil, nil, "unsupported architecture riscv64"},
		{"forced-unsupported-arch", tools, []string{"INSTALL_KUBOX_ARCH=s390x"}, nil, "unsupported architecture s390x"},
		{"no-curl-or-wget", noDownloader, nil, nil, "neither curl nor wget is installed"},
		{"not-root", "/usr/sbin:/usr/bin:/sbin:/bin", nil, nobody, "must run as root"},
		{"missing-pre-placed-binary", tools, []string{"INSTALL_KUBOX_SKIP_DOWNLOAD=true"}, nil, "does not exist: copy kubox-"},
		{"systemd-not-running", tools, []string{"INSTALL_KUBOX_SKIP_START=false"}, nil, "systemd is not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "systemd-not-running" {
				if _, err := os.Stat("/run/systemd/system"); err == nil {
					t.Skip("systemd runs on this host")
				}
			}
			l := newLayout(t)
			before := tree(t, l.Root)
			r := pipeInstall(t, append(l.env(tc.path, "systemd"), tc.extra...), tc.cred)
			mustRefuse(t, r, tc.want, true)
			if after := tree(t, l.Root); !sameList(before, after) {
				t.Errorf("a refused install changed %s:\nbefore %v\nafter  %v", l.Root, before, after)
			}
		})
	}
}

// TestShellcheck keeps install.sh free of shellcheck findings.
func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck not installed: run scripts/install-deps.sh")
	}
	if out, err := exec.Command("shellcheck", installScript(t)).CombinedOutput(); err != nil {
		t.Errorf("shellcheck install.sh: %v\n%s", err, out)
	}
}
