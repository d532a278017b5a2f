package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/pod-security-admission/admission/api/load"
	"k8s.io/pod-security-admission/admission/api/validation"
	"sigs.k8s.io/yaml"
)

// ProfileCIS is the hardening profile of the CIS Kubernetes Benchmark, as
// k3s users know it from its --profile flag.
const ProfileCIS = "cis"

// Profiles are the values --profile takes.
var Profiles = []string{ProfileCIS}

// profile checks a --profile value; "" means none.
func profile(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	for _, known := range Profiles {
		if p == known {
			return p, nil
		}
	}
	return "", fmt.Errorf("invalid --profile %q: choose from %s", p, strings.Join(Profiles, ", "))
}

// CIS audit log bounds (days, files, MB), the CIS Benchmark's minimums,
// used with --profile cis where the --audit-log-max* flags are unset (0).
const (
	CISAuditLogMaxAge    = 30
	CISAuditLogMaxBackup = 10
	CISAuditLogMaxSize   = 100
)

// cisAudit fills in the audit log --profile cis turns on: at
// <data-dir>/server/logs/audit.log unless --audit-log-path says otherwise,
// bounded as the CIS Benchmark asks where the user set no bound.
func cisAudit(a Audit, defaultPath string) Audit {
	if a.Path == "" {
		a.Path = defaultPath
	}
	if a.MaxAge == 0 {
		a.MaxAge = CISAuditLogMaxAge
	}
	if a.MaxBackup == 0 {
		a.MaxBackup = CISAuditLogMaxBackup
	}
	if a.MaxSize == 0 {
		a.MaxSize = CISAuditLogMaxSize
	}
	return a
}

// CISPodSecurityAdmission is the admission configuration --profile cis
// hands the API server unless --pod-security-admission-config-file names
// another: every namespace but kube-system (kubox's own add-ons) is held
// to the "restricted" Pod Security Standard.
const CISPodSecurityAdmission = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: restricted
      enforce-version: latest
      audit: restricted
      audit-version: latest
      warn: restricted
      warn-version: latest
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: [kube-system]
`

// admissionConfiguration is the part of an apiserver.config.k8s.io
// AdmissionConfiguration kubox reads: its plugins' configurations.
type admissionConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Plugins    []struct {
		Name          string          `json:"name"`
		Path          string          `json:"path,omitempty"`
		Configuration json.RawMessage `json:"configuration,omitempty"`
	} `json:"plugins"`
}

// podSecurityAdmission checks a --pod-security-admission-config-file and
// returns its absolute path. The file is an AdmissionConfiguration, as the
// API server's --admission-control-config-file takes it (and k3s's flag of
// the same name): it may configure other plugins too, and its PodSecurity
// entry is checked with upstream's own loader and validation.
func podSecurityAdmission(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", fmt.Errorf("invalid --pod-security-admission-config-file %s: %v", file, err)
	}
	if err := checkPodSecurityAdmission(abs); err != nil {
		return "", fmt.Errorf("invalid --pod-security-admission-config-file %s: %w", abs, err)
	}
	return abs, nil
}

func checkPodSecurityAdmission(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return unwrapPathError(err)
	}
	return checkAdmissionConfiguration(data, filepath.Dir(file))
}

// checkAdmissionConfiguration checks an AdmissionConfiguration's
// PodSecurity entry; dir resolves a relative plugin path, as the API
// server does.
func checkAdmissionConfiguration(data []byte, dir string) error {
	var ac admissionConfiguration
	if err := yaml.Unmarshal(data, &ac); err != nil {
		return fmt.Errorf("not an AdmissionConfiguration: %v", err)
	}
	switch {
	case ac.Kind == "PodSecurityConfiguration":
		return fmt.Errorf("a bare PodSecurityConfiguration: put it under plugins: [{name: PodSecurity, configuration: …}] of an apiserver.config.k8s.io/v1 AdmissionConfiguration")
	case ac.Kind != "AdmissionConfiguration" || (ac.APIVersion != "apiserver.config.k8s.io/v1" && ac.APIVersion != "apiserver.config.k8s.io/v1alpha1"):
		return fmt.Errorf("kind %q of apiVersion %q: want an AdmissionConfiguration of apiVersion apiserver.config.k8s.io/v1", ac.Kind, ac.APIVersion)
	}
	if err := yaml.UnmarshalStrict(data, &ac); err != nil {
		return fmt.Errorf("not an AdmissionConfiguration: %v", err)
	}
	found := false
	for _, p := range ac.Plugins {
		if p.Name != "PodSecurity" {
			continue
		}
		found = true
		psa := []byte(p.Configuration)
		if p.Path != "" {
			path := p.Path
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			var err error
			if psa, err = os.ReadFile(path); err != nil {
				return fmt.Errorf("the PodSecurity plugin's path: %v", unwrapPathError(err))
			}
		}
		if len(psa) == 0 {
			return fmt.Errorf("the PodSecurity plugin has neither a configuration nor a path")
		}
		cfg, err := load.LoadFromData(psa)
		if err != nil {
			return fmt.Errorf("the PodSecurity plugin's configuration: %v", err)
		}
		if errs := validation.ValidatePodSecurityConfiguration(cfg); len(errs) > 0 {
			return fmt.Errorf("the PodSecurity plugin's configuration: %v", errs.ToAggregate())
		}
	}
	if !found {
		return fmt.Errorf("no configuration for the PodSecurity plugin: add plugins: [{name: PodSecurity, configuration: {apiVersion: pod-security.admission.config.k8s.io/v1, kind: PodSecurityConfiguration, …}}]")
	}
	return nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// DefaultKernelParamsDir is where the kernel's parameters are read.
const DefaultKernelParamsDir = "/proc/sys"

// KubeletSysctlsConf is where a user keeps the kernel parameters the
// kubelet needs, as the fix of a failed check says.
const KubeletSysctlsConf = "/etc/sysctl.d/90-kubelet.conf"

// kernelDefaults are the kernel parameters the kubelet sets at start
// unless protectKernelDefaults is on, when it refuses to start instead
// (k8s.io/component-helpers/node/util/sysctl, used by the kubelet's
// container manager): in the kubelet's order.
var kernelDefaults = []struct {
	key  string // under /proc/sys
	want int
}{
	{"vm/overcommit_memory", 1},
	{"vm/panic_on_oom", 0},
	{"kernel/panic", 10},
	{"kernel/panic_on_oops", 1},
	{"kernel/keys/root_maxkeys", 1000000},
	{"kernel/keys/root_maxbytes", 25000000},
}

// checkKernelDefaults reads the kubelet's kernel parameters below dir
// (/proc/sys) and names, in one error, each that differs from what the
// kubelet wants, with the commands that fix them all. why is the flag
// that asked for the check.
func checkKernelDefaults(dir, why string) error {
	var wrong, fixes []string
	for _, p := range kernelDefaults {
		name := strings.ReplaceAll(p.key, "/", ".")
		data, err := os.ReadFile(filepath.Join(dir, p.key))
		got, convErr := strconv.Atoi(strings.TrimSpace(string(data)))
		switch {
		case err != nil:
			wrong = append(wrong, fmt.Sprintf("%s cannot be read (%v), want %d", name, unwrapPathError(err), p.want))
		case convErr != nil:
			wrong = append(wrong, fmt.Sprintf("%s is %q, want %d", name, strings.TrimSpace(string(data)), p.want))
		case got != p.want:
			wrong = append(wrong, fmt.Sprintf("%s is %d, want %d", name, got, p.want))
		default:
			continue
		}
		fixes = append(fixes, fmt.Sprintf("%s=%d", name, p.want))
	}
	switch len(wrong) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s: kernel parameter %s: run \"sysctl -w %s\" and add it to %s", why, wrong[0], fixes[0], KubeletSysctlsConf)
	}
	return fmt.Errorf("%s: kernel parameters %s: run \"sysctl -w %s\" and add them to %s", why, strings.Join(wrong, "; "), strings.Join(fixes, " "), KubeletSysctlsConf)
}
