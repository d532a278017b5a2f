package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func defaults() ServerOptions {
	return ServerOptions{DataDir: DefaultDataDir, ConfigDir: DefaultConfigDir, HTTPSPort: DefaultHTTPSPort}
}

func TestDefaults(t *testing.T) {
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"cluster cidr":  {s.ClusterCIDRs.String(), "10.42.0.0/16"},
		"service cidr":  {s.ServiceCIDRs.String(), "10.43.0.0/16"},
		"cluster dns":   {s.ClusterDNS.String(), "10.43.0.10"},
		"api service":   {s.APIServiceIP().String(), "10.43.0.1"},
		"domain":        {s.ClusterDomain, "cluster.local"},
		"kubeconfig":    {s.Kubeconfig, "/etc/kubox/kubox.yaml"},
		"mode":          {s.KubeconfigMode.String(), "-rw-------"},
		"sqlite":        {s.Paths.SQLiteFile, "/var/lib/kubox/server/db/state.db"},
		"datastore":     {s.Datastore.Kind(), "sqlite"},
		"local url":     {s.LocalURL(), "https://127.0.0.1:6443"},
		"bind":          {s.BindAddress.String(), "0.0.0.0"},
		"node ports":    {s.ServiceNodePorts, "30000-32767"},
		"token":         {s.Paths.TokenFile, "/var/lib/kubox/server/token"},
		"advertise set": {boolStr(s.AdvertiseAddress != nil), "true"},
		"flannel":       {s.FlannelBackend, "vxlan"},
		"node certs":    {s.NodeCertValidity.String(), "8760h0m0s"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestInvalid(t *testing.T) {
	cases := []struct {
		mutate func(*ServerOptions)
		want   string
	}{
		{func(o *ServerOptions) { o.ClusterCIDR = "10.42.0.0/33" }, "invalid --cluster-cidr"},
		{func(o *ServerOptions) { o.ClusterCIDR = "10.42.0.1/16" }, "did you mean 10.42.0.0/16"},
		{func(o *ServerOptions) { o.ServiceCIDR = "10.42.0.0/24" }, "overlap"},
		{func(o *ServerOptions) { o.ServiceCIDR = "10.0.0.0/8" }, "at most 20 host bits"},
		{func(o *ServerOptions) { o.ClusterDNS = "10.99.0.10" }, "must lie inside --service-cidr"},
		{func(o *ServerOptions) { o.ClusterDNS = "dns" }, "invalid --cluster-dns"},
		{func(o *ServerOptions) { o.HTTPSPort = 70000 }, "--https-listen-port"},
		{func(o *ServerOptions) { o.DatastoreCompactInterval = -time.Second }, "--datastore-compact-interval"},
		{func(o *ServerOptions) { o.BindAddress = "host" }, "invalid --bind-address"},
		{func(o *ServerOptions) { o.WriteKubeconfigMode = "0999" }, "--write-kubeconfig-mode"},
		{func(o *ServerOptions) { o.ServiceNodePorts = "32767-30000" }, "--service-node-port-range"},
		{func(o *ServerOptions) { o.DatastoreEndpoint = "etcd.local:2379" }, "invalid --datastore-endpoint"},
		{func(o *ServerOptions) {
			o.DatastoreCAFile = "/nonexistent/ca.pem"
			o.DatastoreEndpoint = "https://e:2379"
		}, "--datastore-cafile"},
		{func(o *ServerOptions) { o.APIServerArgs = []string{"--v=3"} }, "without leading dashes"},
		{func(o *ServerOptions) { o.DataDir = "" }, "--data-dir"},
	}
	for _, c := range cases {
		o := defaults()
		c.mutate(&o)
		_, err := o.Server()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error containing %q, got %v", c.want, err)
		}
	}
}

func TestDatastoreKind(t *testing.T) {
	for ep, kind := range map[string]string{
		"":                              "sqlite",
		"sqlite:///x.db":                "sqlite",
		"postgres://u:p@h/db":           "postgres",
		"mysql://u:p@tcp(h:3306)/db":    "mysql",
		"https://a:2379,https://b:2379": "etcd",
	} {
		if got := (Datastore{Endpoint: ep}).Kind(); got != kind {
			t.Errorf("Kind(%q) = %s, want %s", ep, got, kind)
		}
	}
}

// TestNodeExternalIPs: repeated or comma-separated, IPv4 or IPv6, each
// checked; a bad one is named in one line.
func TestNodeExternalIPs(t *testing.T) {
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	a, err := AgentOptions{NodeName: "n1", NodeExternalIPs: []string{"203.0.113.10, 2001:db8::1", "198.51.100.7", "203.0.113.10"}}.Agent(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(a.NodeExternalIPs); got != "[203.0.113.10 2001:db8::1 198.51.100.7]" {
		t.Errorf("external IPs %s", got)
	}
	for _, bad := range []string{"example.com", "203.0.113.10,", "0.0.0.0", "127.0.0.1", "10.0.0.0/8"} {
		_, err := AgentOptions{NodeName: "n1", NodeExternalIPs: []string{bad}}.Agent(s)
		if err == nil || !strings.Contains(err.Error(), "invalid --node-external-ip") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--node-external-ip %q: %v; want one line naming the flag", bad, err)
		}
	}
}

func TestAgentStorageDir(t *testing.T) {
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	a, err := AgentOptions{NodeName: "n1"}.Agent(s)
	if err != nil {
		t.Fatal(err)
	}
	if a.StorageDir != "/var/lib/kubox/storage" {
		t.Errorf("default storage dir %q", a.StorageDir)
	}
	a, err = AgentOptions{NodeName: "n1", DefaultLocalStoragePath: "/srv/volumes/"}.Agent(s)
	if err != nil || a.StorageDir != "/srv/volumes" {
		t.Errorf("--default-local-storage-path /srv/volumes/: %v %v", a, err)
	}
	if _, err := (AgentOptions{NodeName: "n1", DefaultLocalStoragePath: "volumes"}).Agent(s); err == nil || !strings.Contains(err.Error(), "--default-local-storage-path") {
		t.Errorf("a relative --default-local-storage-path: %v", err)
	}
}

// TestAgentPrivateRegistry: the node reads --private-registry's file, which
// must exist when named; a bad one stops the node before it starts.
func TestAgentPrivateRegistry(t *testing.T) {
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "registries.yaml")
	if _, err := (AgentOptions{NodeName: "n1", PrivateRegistry: file}).Agent(s); err == nil || !strings.Contains(err.Error(), "no such file; check --private-registry") {
		t.Errorf("missing named file: %v", err)
	}
	os.WriteFile(file, []byte("mirrors:\n  docker.io:\n    endpoint: [\"https://mirror.example.com\"]\n"), 0o600)
	a, err := AgentOptions{NodeName: "n1", PrivateRegistry: file}.Agent(s)
	if err != nil || a.Registries == nil || a.Registries.Mirrors[0].Registry != "docker.io" {
		t.Errorf("good file: %+v, %v", a, err)
	}
	os.WriteFile(file, []byte("mirrors:\n  docker.io:\n    endpoints: []\n"), 0o600)
	if _, err := (AgentOptions{NodeName: "n1", PrivateRegistry: file}).Agent(s); err == nil || !strings.Contains(err.Error(), `unknown key "mirrors.docker.io.endpoints"`) {
		t.Errorf("bad file: %v", err)
	}
}

// TestServerChecksFlannelBackend: the cluster's backend is checked by the
// server itself, so a control-plane-only server refuses a bad one too.
func TestServerChecksFlannelBackend(t *testing.T) {
	o := defaults()
	o.FlannelBackend = "wireguard"
	if _, err := o.Server(); err == nil || !strings.Contains(err.Error(), `invalid --flannel-backend "wireguard"`) {
		t.Errorf("err = %v", err)
	}
	o.FlannelBackend = "host-gw"
	if s, err := o.Server(); err != nil || s.FlannelBackend != "host-gw" {
		t.Errorf("host-gw: %v, %v", s, err)
	}
	o.NodeCertValidity = time.Second
	if _, err := o.Server(); err == nil || !strings.Contains(err.Error(), "invalid --node-cert-validity") {
		t.Errorf("a one-second node certificate: err = %v", err)
	}
}
