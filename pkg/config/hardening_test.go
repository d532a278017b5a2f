package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/pod-security-admission/admission/api/load"
	"sigs.k8s.io/yaml"
)

func TestProfileValues(t *testing.T) {
	o := defaults()
	o.Profile = "CIS-1.8"
	_, err := o.Server()
	if err == nil || err.Error() != `invalid --profile "CIS-1.8": choose from cis` {
		t.Errorf("server --profile CIS-1.8: %v", err)
	}
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (AgentOptions{NodeName: "n", NodeIP: "192.0.2.1", Profile: "strict"}).Agent(s); err == nil || !strings.Contains(err.Error(), `invalid --profile "strict": choose from cis`) {
		t.Errorf("agent --profile strict: %v", err)
	}
}

// TestNoProfile: without a profile the API keeps anonymous access (health
// and version only, by RBAC), and there is no admission configuration and
// no audit log.
func TestNoProfile(t *testing.T) {
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	if !s.AnonymousAuth || s.AdmissionConfigFile != "" || s.AdmissionConfig != nil || s.Audit.Path != "" {
		t.Errorf("defaults: anonymous %v, admission %q %q, audit %q", s.AnonymousAuth, s.AdmissionConfigFile, s.AdmissionConfig, s.Audit.Path)
	}
}

// TestCISProfile: what --profile cis sets on a server.
func TestCISProfile(t *testing.T) {
	o := defaults()
	o.Profile = ProfileCIS
	s, err := o.Server()
	if err != nil {
		t.Fatal(err)
	}
	if s.AnonymousAuth {
		t.Errorf("--profile cis leaves anonymous access on")
	}
	if want := (Audit{Path: "/var/lib/kubox/server/logs/audit.log", MaxAge: 30, MaxBackup: 10, MaxSize: 100}); s.Audit != want {
		t.Errorf("--profile cis audit log %+v, want %+v", s.Audit, want)
	}
	if s.AdmissionConfigFile != "/var/lib/kubox/server/conf/pod-security-admission.yaml" {
		t.Errorf("--profile cis admission configuration at %q", s.AdmissionConfigFile)
	}
	// kubox's own configuration passes the check a user's file gets, and
	// says restricted everywhere but kube-system.
	if err := checkAdmissionConfiguration(s.AdmissionConfig, "/"); err != nil {
		t.Fatalf("the profile's admission configuration: %v", err)
	}
	var ac admissionConfiguration
	if err := yaml.UnmarshalStrict(s.AdmissionConfig, &ac); err != nil {
		t.Fatal(err)
	}
	psa, err := load.LoadFromData(ac.Plugins[0].Configuration)
	if err != nil {
		t.Fatal(err)
	}
	d := psa.Defaults
	if d.Enforce != "restricted" || d.Audit != "restricted" || d.Warn != "restricted" || strings.Join(psa.Exemptions.Namespaces, ",") != "kube-system" {
		t.Errorf("the profile's PodSecurity: defaults %+v, exempt namespaces %v", d, psa.Exemptions.Namespaces)
	}

	// The user's choices win over the profile's.
	dir := t.TempDir()
	userFile := writeTemp(t, dir, "psa.yaml", baselinePSA)
	o.PodSecurityAdmissionConfigFile = userFile
	o.Audit = Audit{Path: filepath.Join(dir, "audit.log"), MaxAge: 7}
	if s, err = o.Server(); err != nil {
		t.Fatal(err)
	}
	if s.AdmissionConfigFile != userFile || s.AdmissionConfig != nil {
		t.Errorf("with --pod-security-admission-config-file the API server gets %q (writing %d bytes)", s.AdmissionConfigFile, len(s.AdmissionConfig))
	}
	if s.Audit.Path != filepath.Join(dir, "audit.log") || s.Audit.MaxAge != 7 || s.Audit.MaxBackup != 10 {
		t.Errorf("user's audit settings under --profile cis: %+v", s.Audit)
	}
}

// baselinePSA is the profile's configuration with "baseline" enforced.
var baselinePSA = strings.Replace(CISPodSecurityAdmission, "enforce: restricted", "enforce: baseline", 1)

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPodSecurityAdmissionFile: a usable file is handed on by its absolute
// path; a missing or malformed one is refused in one line naming it.
func TestPodSecurityAdmissionFile(t *testing.T) {
	dir := t.TempDir()
	writeTemp(t, dir, "psa-only.yaml", "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: baseline\n")
	for _, c := range []struct {
		name, content string
		want          string // "" for accepted
	}{
		{"inline.yaml", baselinePSA, ""},
		{"by-path.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: psa-only.yaml\n", ""},
		{"other-plugins.yaml", strings.Replace(baselinePSA, "plugins:\n", "plugins:\n- name: EventRateLimit\n  path: /nonexistent/eventconfig.yaml\n", 1), ""},
		{"missing.yaml", "", "no such file or directory"},
		{"not-yaml.yaml", "plugins: [name: PodSecurity\n", "not an AdmissionConfiguration"},
		{"bare.yaml", "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: baseline\n", "a bare PodSecurityConfiguration"},
		{"wrong-kind.yaml", "apiVersion: v1\nkind: ConfigMap\n", `kind "ConfigMap"`},
		{"no-podsecurity.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: x.yaml\n", "no configuration for the PodSecurity plugin"},
		{"bad-level.yaml", strings.Replace(baselinePSA, "enforce: baseline", "enforce: strict", 1), "strict"},
		{"bad-path.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: gone.yaml\n", "the PodSecurity plugin's path: no such file"},
		{"typo.yaml", strings.Replace(baselinePSA, "plugins:", "plugin:", 1), "not an AdmissionConfiguration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if c.name != "missing.yaml" {
				writeTemp(t, dir, c.name, c.content)
			}
			o := defaults()
			o.PodSecurityAdmissionConfigFile = path
			s, err := o.Server()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.AdmissionConfigFile != path {
					t.Errorf("admission configuration %q, want %q", s.AdmissionConfigFile, path)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error saying %q", c.want)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "invalid --pod-security-admission-config-file "+path+": ") || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming the flag and %s, saying %q", msg, path, c.want)
			}
		})
	}
	// A relative name is handed on as an absolute path.
	t.Chdir(dir)
	o := defaults()
	o.PodSecurityAdmissionConfigFile = "inline.yaml"
	if s, err := o.Server(); err != nil || s.AdmissionConfigFile != filepath.Join(dir, "inline.yaml") {
		t.Errorf("relative file: %v, %+v", err, s)
	}
}

// kernelParams writes the kubelet's six kernel parameters below a temp
// dir standing in for /proc/sys, with the wanted values unless changed.
func kernelParams(t *testing.T, change map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range kernelDefaults {
		v, ok := change[p.key]
		if !ok {
			v = strconv.Itoa(p.want)
		}
		if v == "<missing>" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p.key)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.key), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestKernelDefaults(t *testing.T) {
	s, err := defaults().Server()
	if err != nil {
		t.Fatal(err)
	}
	agent := func(dir string, mutate func(*AgentOptions)) (*Agent, error) {
		o := AgentOptions{NodeName: "n", NodeIP: "192.0.2.1", KernelParamsDir: dir}
		if mutate != nil {
			mutate(&o)
		}
		return o.Agent(s)
	}
	protect := func(o *AgentOptions) { o.ProtectKernelDefaults = true }

	a, err := agent(kernelParams(t, nil), protect)
	if err != nil || !a.ProtectKernelDefaults {
		t.Fatalf("all six as the kubelet wants them: %v", err)
	}

	_, err = agent(kernelParams(t, map[string]string{"kernel/panic": "0"}), protect)
	want := `--protect-kernel-defaults: kernel parameter kernel.panic is 0, want 10: run "sysctl -w kernel.panic=10" and add it to /etc/sysctl.d/90-kubelet.conf`
	if err == nil || err.Error() != want {
		t.Errorf("kernel.panic=0:\n got %v\nwant %s", err, want)
	}

	_, err = agent(kernelParams(t, map[string]string{"vm/overcommit_memory": "0", "kernel/keys/root_maxbytes": "<missing>", "vm/panic_on_oom": "x"}), protect)
	want = `--protect-kernel-defaults: kernel parameters vm.overcommit_memory is 0, want 1; vm.panic_on_oom is "x", want 0; kernel.keys.root_maxbytes cannot be read (no such file or directory), want 25000000: run "sysctl -w vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.keys.root_maxbytes=25000000" and add them to /etc/sysctl.d/90-kubelet.conf`
	if err == nil || err.Error() != want {
		t.Errorf("three wrong:\n got %v\nwant %s", err, want)
	}

	// Not asked for: not checked, and the kubelet keeps setting them.
	wrong := kernelParams(t, map[string]string{"kernel/panic": "0"})
	if a, err := agent(wrong, nil); err != nil || a.ProtectKernelDefaults {
		t.Errorf("without --protect-kernel-defaults: %v, protect %v", err, a != nil && a.ProtectKernelDefaults)
	}
	// --profile cis turns it on, on an agent and on a server's node.
	if _, err := agent(wrong, func(o *AgentOptions) { o.Profile = ProfileCIS }); err == nil || !strings.HasPrefix(err.Error(), "--profile cis (which implies --protect-kernel-defaults): kernel parameter kernel.panic is 0") {
		t.Errorf("agent --profile cis: %v", err)
	}
	o := defaults()
	o.Profile = ProfileCIS
	cis, err := o.Server()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (AgentOptions{NodeName: "n", NodeIP: "192.0.2.1", KernelParamsDir: wrong}).Agent(cis); err == nil || !strings.Contains(err.Error(), "kernel.panic is 0, want 10") {
		t.Errorf("server --profile cis, its node: %v", err)
	}
}
