package integration

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCheckConfig: `kubox check-config` lists every requirement with its
// state and, for what is missing, the command that fixes it; on a host set
// up by scripts/install-deps.sh nothing fatal is missing. -o json says the
// same, and each kernel feature's verdict agrees with the kernel's own
// configuration where the host has one. An optional feature that is
// missing fails the check only when --require names it.
func TestCheckConfig(t *testing.T) {
	bin := kuboxBin(t)
	out, err := run(bin, []string{"check-config"}, nil)
	if err != nil {
		t.Fatalf("kubox check-config failed on a prepared host: %v\n%s", err, out)
	}
	for _, want := range []string{"iptables on PATH", "overlay filesystem", "bridge netfilter", "connection tracking", "memory cgroup controller", "running as root"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "ok ") && strings.Contains(line, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("check-config does not report %q as ok:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "MISS") && !strings.Contains(line, "fix: ") {
			t.Errorf("a missing requirement without a fix: %s", line)
		}
	}

	js, err := run(bin, []string{"check-config", "-o", "json"}, nil)
	if err != nil {
		t.Fatalf("kubox check-config -o json: %v\n%s", err, js)
	}
	var report struct {
		OK           bool `json:"ok"`
		Requirements []struct {
			ID, Name, Info, Fix string
			OK, Fatal           bool
		} `json:"requirements"`
	}
	if err := json.Unmarshal([]byte(js), &report); err != nil {
		t.Fatalf("check-config -o json is not JSON: %v\n%s", err, js)
	}
	byID := map[string]int{}
	for i, r := range report.Requirements {
		byID[r.ID] = i
		if !r.OK && r.Fix == "" {
			t.Errorf("%s is missing and has no fix", r.ID)
		}
	}
	if !report.OK {
		t.Errorf("-o json says ok false on a prepared host:\n%s", js)
	}

	// Each kernel feature against the kernel's configuration, when readable.
	config := kernelConfig(t)
	var missingOptional string
	for id, option := range map[string]string{
		"vxlan": "CONFIG_VXLAN", "wireguard": "CONFIG_WIREGUARD", "ipset": "CONFIG_IP_SET", "xt_set": "CONFIG_NETFILTER_XT_SET",
		"nftables": "CONFIG_NF_TABLES", "nftables-queue": "CONFIG_NFT_QUEUE", "overlay": "CONFIG_OVERLAY_FS", "conntrack": "CONFIG_NF_CONNTRACK",
	} {
		i, ok := byID[id]
		if !ok {
			t.Errorf("check-config -o json does not report %s", id)
			continue
		}
		r := report.Requirements[i]
		if config == nil {
			continue
		}
		if built := config[option] == "y"; built != r.OK && config[option] != "m" {
			t.Errorf("%s: check-config says ok=%v, the kernel config has %s=%q", id, r.OK, option, config[option])
		}
		if !r.OK {
			if !strings.Contains(r.Fix, option) {
				t.Errorf("%s is missing, but its fix %q does not name %s", id, r.Fix, option)
			}
			if !r.Fatal {
				missingOptional = id
			}
		}
	}
	if missingOptional == "" {
		t.Log("every optional kernel feature is there: --require not exercised")
		return
	}
	out, err = run(bin, []string{"check-config", "--require", missingOptional}, nil)
	if err == nil || !strings.Contains(out, "FAIL "+missingOptional) {
		t.Errorf("check-config --require %s passed although it is missing, or shows no FAIL line: %v\n%s", missingOptional, err, out)
	}
	if out, err = run(bin, []string{"check-config", "--require", "no-such-check"}, nil); err == nil || !strings.Contains(out, `invalid --require "no-such-check"`) {
		t.Errorf("check-config --require no-such-check: %v\n%s", err, out)
	}
}

// kernelConfig reads the running kernel's configuration where the host
// keeps one, or returns nil.
func kernelConfig(t *testing.T) map[string]string {
	t.Helper()
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var r io.Reader
	if f, err := os.Open("/boot/config-" + strings.TrimSpace(string(release))); err == nil {
		defer f.Close()
		r = f
	} else if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	} else {
		t.Log("no kernel configuration on this host: verdicts not cross-checked")
		return nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			cfg[k] = v
		}
	}
	return cfg
}

// TestCheckConfigPortsAndClock: a default port that another program
// holds is an optional line naming the command that shows the holder, and
// fatal once --require names it; with --server, a server whose clock is an
// hour off fails the check in a line that says by how much.
func TestCheckConfigPortsAndClock(t *testing.T) {
	bin := kuboxBin(t)
	l, err := net.Listen("tcp", "127.0.0.1:6444")
	if err != nil {
		t.Skipf("cannot hold port 6444 for the test: %v", err)
	}
	defer l.Close()
	out, err := run(bin, []string{"check-config", "--disable-network-policy"}, nil)
	if err != nil || !strings.Contains(out, "MISS port-6444") || !strings.Contains(out, "ss -ltnp 'sport = :6444'") {
		t.Errorf("check-config with port 6444 held: %v\n%s", err, out)
	}
	if out, err := run(bin, []string{"check-config", "--disable-network-policy", "--require", "port-6444"}, nil); err == nil || !strings.Contains(out, "FAIL port-6444") {
		t.Errorf("check-config --require port-6444 with the port held: %v\n%s", err, out)
	}

	// The server's answer carries an hour-old Date: its clock is behind.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
		w.Write([]byte("not a CA"))
	}))
	defer srv.Close()
	out, err = run(bin, []string{"check-config", "--disable-network-policy", "--server", srv.URL}, nil)
	if err == nil || !strings.Contains(out, "FAIL clock") || !strings.Contains(out, "ahead of "+srv.URL) {
		t.Errorf("check-config --server with a clock an hour apart: %v\n%s", err, out)
	}
}
