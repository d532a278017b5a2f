package integration

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// listeners returns the TCP sockets process pid listens on, as "ip:port".
func listeners(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A = LISTEN
				continue
			}
			out = append(out, decodeAddr(fields[1]))
		}
		f.Close()
	}
	return out
}

// decodeAddr turns /proc/net/tcp's hex "0100007F:1F90" into "127.0.0.1:8080".
func decodeAddr(hexAddr string) string {
	ipHex, portHex, _ := strings.Cut(hexAddr, ":")
	port, _ := strconv.ParseUint(portHex, 16, 16)
	var ip string
	if len(ipHex) == 8 {
		b := make([]byte, 4)
		for i := 0; i < 4; i++ {
			v, _ := strconv.ParseUint(ipHex[i*2:i*2+2], 16, 8)
			b[3-i] = byte(v)
		}
		ip = fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
	} else {
		ip = "[" + ipHex + "]"
		if strings.Trim(ipHex, "0") == "" {
			ip = "[::]"
		} else if ipHex == "00000000000000000000000001000000" {
			ip = "[::1]"
		}
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

func isLoopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "[::1]:")
}

// TestSecurity: one TCP port, private files, no anonymous access.
func TestSecurity(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	s := newServer(t)
	s.StartReady()

	apiSeen := false
	for _, l := range listeners(t, s.PID()) {
		if strings.HasSuffix(l, fmt.Sprintf(":%d", s.Port)) {
			apiSeen = true
			continue
		}
		if !isLoopback(l) {
			t.Errorf("unexpected TCP listener %s (only the API port %d may listen beyond localhost)", l, s.Port)
		}
	}
	if !apiSeen {
		t.Errorf("the API port %d is not among the server's listeners", s.Port)
	}

	check := func(path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			return
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
	}
	n := 0
	filepath.WalkDir(filepath.Join(s.DataDir, "server", "tls"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			check(path)
			n++
		}
		return nil
	})
	if n < 10 {
		t.Errorf("only %d files under tls/, expected the CAs, keys and certificates", n)
	}
	check(filepath.Join(s.DataDir, "server", "token"))
	check(s.Kubeconfig)
	token, _ := os.ReadFile(filepath.Join(s.DataDir, "server", "token"))
	if len(strings.TrimSpace(string(token))) < 32 {
		t.Errorf("join token %q is too short to be a strong secret", token)
	}

	// Without credentials: the health and version paths answer, every
	// other path is 401 (not a 403 that would confirm it exists).
	for path, want := range map[string]int{
		"/api/v1/pods": http.StatusUnauthorized, "/api/v1/namespaces/kube-system/secrets": http.StatusUnauthorized,
		"/metrics": http.StatusUnauthorized, "/apis": http.StatusUnauthorized,
		"/readyz": http.StatusOK, "/livez": http.StatusOK, "/healthz": http.StatusOK, "/version": http.StatusOK,
	} {
		if code := anonymousGet(t, s.Port, path); code != want {
			t.Errorf("anonymous GET %s: HTTP %d, want %d", path, code, want)
		}
	}
}

// TestTwoServers: two servers with their own data dirs, ports and
// kubeconfigs run side by side and hold separate state.
func TestTwoServers(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	a, b := newServer(t), newServer(t)
	a.Start()
	b.Start()
	a.WaitReady(defaultReady)
	b.WaitReady(defaultReady)
	a.MustKubectl("create", "namespace", "only-on-a")
	if out, err := b.Kubectl("get", "namespace", "only-on-a"); err == nil {
		t.Fatalf("server b sees server a's namespace:\n%s", out)
	}
	b.MustKubectl("create", "namespace", "only-on-b")
	a.MustKubectl("get", "namespace", "only-on-a")
}
