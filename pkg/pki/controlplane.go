package pki

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ControlPlane is the set of files the control plane uses, all under Dir.
// Every field except Dir is a path joined with Dir.
type ControlPlane struct {
	Dir string

	ServerCA, ServerCAKey               string // signs serving certificates
	ClientCA, ClientCAKey               string // signs client certificates
	RequestHeaderCA, RequestHeaderCAKey string // signs the aggregation front proxy's client certificate
	KubeletCA, KubeletCAKey             string // signs kubelets' serving certificates, and nothing else
	ServiceAccountKey                   string // signs service-account tokens

	ServingCert, ServingKey                   string // kube-apiserver serving certificate
	AdminCert, AdminKey                       string // CN=system:admin, O=system:masters
	ControllerCert, ControllerKey             string // CN=system:kube-controller-manager
	SchedulerCert, SchedulerKey               string // CN=system:kube-scheduler
	APIServerKubeletCert, APIServerKubeletKey string // kube-apiserver's client certificate towards kubelets
	ProxyClientCert, ProxyClientKey           string // CN=system:auth-proxy, signed by the request-header CA
}

// ControlPlaneFiles returns the control-plane file paths under dir without
// touching the filesystem, for code that only needs to read them.
func ControlPlaneFiles(dir string) ControlPlane {
	p := func(name string) string { return filepath.Join(dir, name) }
	return ControlPlane{
		Dir:                  dir,
		ServerCA:             p("server-ca.crt"),
		ServerCAKey:          p("server-ca.key"),
		ClientCA:             p("client-ca.crt"),
		ClientCAKey:          p("client-ca.key"),
		RequestHeaderCA:      p("request-header-ca.crt"),
		RequestHeaderCAKey:   p("request-header-ca.key"),
		KubeletCA:            p("kubelet-ca.crt"),
		KubeletCAKey:         p("kubelet-ca.key"),
		ServiceAccountKey:    p("service.key"),
		ServingCert:          p("serving-kube-apiserver.crt"),
		ServingKey:           p("serving-kube-apiserver.key"),
		AdminCert:            p("client-admin.crt"),
		AdminKey:             p("client-admin.key"),
		ControllerCert:       p("client-controller.crt"),
		ControllerKey:        p("client-controller.key"),
		SchedulerCert:        p("client-scheduler.crt"),
		SchedulerKey:         p("client-scheduler.key"),
		APIServerKubeletCert: p("client-kube-apiserver.crt"),
		APIServerKubeletKey:  p("client-kube-apiserver.key"),
		ProxyClientCert:      p("client-auth-proxy.crt"),
		ProxyClientKey:       p("client-auth-proxy.key"),
	}
}

// EnsureControlPlane creates or reuses every CA, key and certificate in dir
// (created 0700 if missing), following the rules of LoadOrCreateCA,
// EnsureCert and EnsureKey. The serving certificate carries exactly sans; the
// caller supplies every name the API server answers to (including
// kubernetes.default.svc and the service IP). Leaf certificates are valid
// for validity (0: 365 days). It returns the file paths,
// which are filled in even on error, and human-readable notes about what it
// created or renewed, for logging.
func EnsureControlPlane(dir string, sans SANs, validity, renewBefore time.Duration, now time.Time) (ControlPlane, []string, error) {
	cp := ControlPlaneFiles(dir)
	var notes []string

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cp, notes, fmt.Errorf("creating certificate directory %s: %w", dir, err)
	}

	// Separate CAs keep the trust domains apart: a client certificate can
	// never pass as a serving certificate, and only the front proxy's
	// certificate is trusted to assert a user through request headers.
	// The timestamp in each name tells this cluster's CAs apart from another
	// cluster's in a trust store.
	loadCA := func(name, certFile, keyFile, cn string) (*CA, error) {
		ca, action, err := loadOrCreateCA(certFile, keyFile, fmt.Sprintf("%s@%d", cn, now.Unix()), renewBefore, now)
		switch action {
		case caCreated:
			notes = append(notes, "created "+name)
		case caRenewed:
			notes = append(notes, fmt.Sprintf("renewed %s (expires within %s)", name, within(renewBefore)))
		}
		return ca, err
	}
	serverCA, err := loadCA("server CA", cp.ServerCA, cp.ServerCAKey, "kubox-server-ca")
	if err != nil {
		return cp, notes, err
	}
	clientCA, err := loadCA("client CA", cp.ClientCA, cp.ClientCAKey, "kubox-client-ca")
	if err != nil {
		return cp, notes, err
	}
	requestHeaderCA, err := loadCA("request-header CA", cp.RequestHeaderCA, cp.RequestHeaderCAKey, "kubox-request-header-ca")
	if err != nil {
		return cp, notes, err
	}
	// Kubelets' serving certificates have a CA of their own: the names in
	// them come from joining nodes, so no client that trusts the server CA
	// may accept one, and the API server trusts only this CA for kubelets.
	if _, err := loadCA("kubelet CA", cp.KubeletCA, cp.KubeletCAKey, "kubox-kubelet-ca"); err != nil {
		return cp, notes, err
	}

	created, err := ensureKey(cp.ServiceAccountKey)
	if err != nil {
		return cp, notes, err
	}
	if created {
		notes = append(notes, "created service-account signing key")
	}

	leaves := []struct {
		name      string
		ca        *CA
		cert, key string
		spec      CertSpec
	}{
		{"serving", serverCA, cp.ServingCert, cp.ServingKey,
			CertSpec{CommonName: "kube-apiserver", SANs: sans, Server: true}},
		{"admin", clientCA, cp.AdminCert, cp.AdminKey,
			CertSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Client: true}},
		{"controller-manager", clientCA, cp.ControllerCert, cp.ControllerKey,
			CertSpec{CommonName: "system:kube-controller-manager", Client: true}},
		{"scheduler", clientCA, cp.SchedulerCert, cp.SchedulerKey,
			CertSpec{CommonName: "system:kube-scheduler", Client: true}},
		{"kube-apiserver kubelet client", clientCA, cp.APIServerKubeletCert, cp.APIServerKubeletKey,
			CertSpec{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true}},
		{"auth-proxy client", requestHeaderCA, cp.ProxyClientCert, cp.ProxyClientKey,
			CertSpec{CommonName: "system:auth-proxy", Client: true}},
	}
	for _, l := range leaves {
		l.spec.Validity = validity
		a, err := l.ca.ensureCert(l.cert, l.key, l.spec, renewBefore, now)
		if err != nil {
			return cp, notes, err
		}
		if a.verb != "" {
			note := a.verb + " " + l.name + " certificate"
			if a.why != "" {
				note += " (" + a.why + ")"
			}
			notes = append(notes, note)
		}
	}
	return cp, notes, nil
}

// LoadCAs loads the cluster's four CAs from cp's files, and the embedded
// etcd member's CA if there is one, for renewing what they signed. A
// missing CA is an error: nothing is created here.
func LoadCAs(cp ControlPlane) ([]*CA, error) {
	var cas []*CA
	for _, f := range [][2]string{
		{cp.ServerCA, cp.ServerCAKey}, {cp.ClientCA, cp.ClientCAKey},
		{cp.RequestHeaderCA, cp.RequestHeaderCAKey}, {cp.KubeletCA, cp.KubeletCAKey},
	} {
		ca, err := loadCA(f[0], f[1])
		if err != nil {
			return nil, err
		}
		cas = append(cas, ca)
	}
	etcd := EtcdFiles(filepath.Join(cp.Dir, "etcd"))
	if ok, err := exists(etcd.CA); err != nil {
		return nil, err
	} else if ok {
		ca, err := loadCA(etcd.CA, etcd.CAKey)
		if err != nil {
			return nil, err
		}
		cas = append(cas, ca)
	}
	return cas, nil
}
