package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// podResolvConf returns the resolv.conf the kubelet hands to pods with
// dnsPolicy Default (CoreDNS among them): the user's --resolv-conf as it
// is, or the host's without loopback resolvers (127.0.0.53 and the like
// answer only on the host, never inside a pod's network namespace).
func (n *node) podResolvConf() (string, error) {
	if n.a.ResolvConf != "" {
		return n.a.ResolvConf, nil
	}
	host := "/etc/resolv.conf"
	for _, candidate := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		data, err := os.ReadFile(candidate)
		if err != nil {
			continue
		}
		if out, ok := withoutLoopback(data); ok {
			if candidate == host && bytes.Equal(out, data) {
				return host, nil
			}
			path := filepath.Join(n.p.AgentDir, "etc", "resolv.conf")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(path, out, 0o644); err != nil {
				return "", fmt.Errorf("writing %s: %w", path, err)
			}
			return path, nil
		}
	}
	n.log.Warnf("no usable nameserver in /etc/resolv.conf (only loopback ones): pods get no upstream DNS; set --resolv-conf")
	path := filepath.Join(n.p.AgentDir, "etc", "resolv.conf")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, nil, 0o644)
}

// withoutLoopback drops loopback nameserver lines; ok tells whether any
// nameserver is left.
func withoutLoopback(data []byte) ([]byte, bool) {
	var out bytes.Buffer
	left := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && ip.IsLoopback() {
				continue
			}
			left++
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes(), left > 0
}
