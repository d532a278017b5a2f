package flannel

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// conflist is the part of the CNI configuration containerd acts on.
type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []struct {
		Type             string          `json:"type"`
		Bridge           string          `json:"bridge"`
		IsDefaultGateway bool            `json:"isDefaultGateway"`
		IPMasq           *bool           `json:"ipMasq"`
		HairpinMode      bool            `json:"hairpinMode"`
		MTU              *int            `json:"mtu"`
		SNAT             bool            `json:"snat"`
		Capabilities     map[string]bool `json:"capabilities"`
		IPAM             *struct {
			Type    string                      `json:"type"`
			Ranges  [][]struct{ Subnet string } `json:"ranges"`
			DataDir string                      `json:"dataDir"`
		} `json:"ipam"`
	} `json:"plugins"`
}

func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readConflist(t *testing.T, dir string) conflist {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ConflistName))
	if err != nil {
		t.Fatal(err)
	}
	var c conflist
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("CNI configuration is not valid JSON: %v\n%s", err, data)
	}
	return c
}

// Every backend gets the same bridge configuration; only the MTU differs:
// the overlay's for vxlan (its header takes 50 bytes), the interface's for
// host-gw, and none (the bridge plugin's default) with --flannel-backend none.
func TestWriteConflistPerBackend(t *testing.T) {
	for _, tc := range []struct {
		backend string
		mtu     int
	}{
		{"vxlan", 1450},
		{"host-gw", 1500},
		{"none", 0},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etc", "cni", "net.d") // not there yet
			ipamDir := filepath.Join(t.TempDir(), "networks")
			if err := WriteConflist(dir, ipamDir, []*net.IPNet{cidr(t, "10.42.3.0/24")}, tc.mtu); err != nil {
				t.Fatal(err)
			}
			c := readConflist(t, dir)
			if c.CNIVersion != "1.0.0" || c.Name != "kubox" {
				t.Errorf("cniVersion, name = %q, %q; want 1.0.0, kubox", c.CNIVersion, c.Name)
			}
			var types []string
			for _, p := range c.Plugins {
				types = append(types, p.Type)
			}
			if got := strings.Join(types, ","); got != "bridge,portmap,bandwidth" {
				t.Fatalf("plugins = %s, want bridge,portmap,bandwidth", got)
			}
			br := c.Plugins[0]
			if br.Bridge != BridgeName || BridgeName != "cni0" {
				t.Errorf("bridge = %q, want cni0", br.Bridge)
			}
			if !br.IsDefaultGateway || !br.HairpinMode {
				t.Errorf("isDefaultGateway, hairpinMode = %v, %v; want true, true", br.IsDefaultGateway, br.HairpinMode)
			}
			// flannel masquerades; a second masquerade in the bridge
			// would hide pod addresses from other nodes.
			if br.IPMasq == nil || *br.IPMasq {
				t.Errorf("ipMasq = %v, want an explicit false", br.IPMasq)
			}
			switch {
			case tc.mtu == 0 && br.MTU != nil:
				t.Errorf("mtu = %d, want none (the plugin's default)", *br.MTU)
			case tc.mtu != 0 && (br.MTU == nil || *br.MTU != tc.mtu):
				t.Errorf("mtu = %v, want %d", br.MTU, tc.mtu)
			}
			if br.IPAM == nil || br.IPAM.Type != "host-local" {
				t.Fatalf("ipam = %+v, want host-local", br.IPAM)
			}
			if len(br.IPAM.Ranges) != 1 || len(br.IPAM.Ranges[0]) != 1 || br.IPAM.Ranges[0][0].Subnet != "10.42.3.0/24" {
				t.Errorf("ipam ranges = %+v, want the podCIDR 10.42.3.0/24 alone", br.IPAM.Ranges)
			}
			if br.IPAM.DataDir != ipamDir {
				t.Errorf("ipam dataDir = %q, want %q", br.IPAM.DataDir, ipamDir)
			}
			if pm := c.Plugins[1]; !pm.Capabilities["portMappings"] || !pm.SNAT {
				t.Errorf("portmap = %+v, want the portMappings capability and snat", pm)
			}
			if bw := c.Plugins[2]; !bw.Capabilities["bandwidth"] {
				t.Errorf("bandwidth = %+v, want the bandwidth capability", bw)
			}
		})
	}
}

// containerd watches the directory: the file is replaced whole, readable
// by all, and no temporary file is left for containerd to pick up.
func TestWriteConflistReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	ipamDir := t.TempDir()
	if err := WriteConflist(dir, ipamDir, []*net.IPNet{cidr(t, "10.42.1.0/24")}, 1450); err != nil {
		t.Fatal(err)
	}
	if err := WriteConflist(dir, ipamDir, []*net.IPNet{cidr(t, "10.42.7.0/24")}, 0); err != nil {
		t.Fatal(err)
	}
	c := readConflist(t, dir)
	if got := c.Plugins[0].IPAM.Ranges[0][0].Subnet; got != "10.42.7.0/24" {
		t.Errorf("subnet after rewrite = %s, want 10.42.7.0/24", got)
	}
	if c.Plugins[0].MTU != nil {
		t.Errorf("mtu after rewrite = %d, want none", *c.Plugins[0].MTU)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != ConflistName {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, ConflistName)
	}
	fi, err := os.Stat(filepath.Join(dir, ConflistName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want -rw-r--r--", fi.Mode().Perm())
	}
}

func TestWriteConflistErrors(t *testing.T) {
	t.Run("dir is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "net.d")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		err := WriteConflist(file, t.TempDir(), []*net.IPNet{cidr(t, "10.42.1.0/24")}, 0)
		if err == nil {
			t.Fatal("WriteConflist into a regular file succeeded")
		}
		t.Log(err)
		oneLine(t, err)
		if !strings.Contains(err.Error(), file) {
			t.Errorf("error %q does not name %s", err, file)
		}
	})
	t.Run("target is a directory", func(t *testing.T) {
		// The rename fails; the old entry stays and no temporary file
		// is left behind.
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, ConflistName), 0o755); err != nil {
			t.Fatal(err)
		}
		err := WriteConflist(dir, t.TempDir(), []*net.IPNet{cidr(t, "10.42.1.0/24")}, 0)
		if err == nil {
			t.Fatal("WriteConflist over a directory succeeded")
		}
		t.Log(err)
		oneLine(t, err)
		if !strings.HasPrefix(err.Error(), "writing CNI configuration: ") {
			t.Errorf("error %q does not say what was being written", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries after the failed write, want 1", len(entries))
		}
	})
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
}

// A dual-stack node's bridge hands each pod an address from each of its
// ranges, in the cluster's order: the first is the pod's primary address.
func TestWriteConflistDualStack(t *testing.T) {
	dir := t.TempDir()
	if err := WriteConflist(dir, t.TempDir(), []*net.IPNet{cidr(t, "10.42.3.0/24"), cidr(t, "fd42:0:0:3::/64")}, 1430); err != nil {
		t.Fatal(err)
	}
	r := readConflist(t, dir).Plugins[0].IPAM.Ranges
	if len(r) != 2 || len(r[0]) != 1 || len(r[1]) != 1 || r[0][0].Subnet != "10.42.3.0/24" || r[1][0].Subnet != "fd42:0:0:3::/64" {
		t.Errorf("ipam ranges = %+v, want a range set per family, IPv4 first", r)
	}
}
