package pki

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubox-io/kubox/pkg/atomicfile"
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

	// A CA's certificate file is its trust bundle (see CA); the
	// controller-manager's signers take a file with the signing
	// certificate alone, which these are.
	ServerCANoChain, ClientCANoChain, RequestHeaderCANoChain, KubeletCANoChain string

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
		Dir:                    dir,
		ServerCA:               p("server-ca.crt"),
		ServerCAKey:            p("server-ca.key"),
		ClientCA:               p("client-ca.crt"),
		ClientCAKey:            p("client-ca.key"),
		RequestHeaderCA:        p("request-header-ca.crt"),
		RequestHeaderCAKey:     p("request-header-ca.key"),
		KubeletCA:              p("kubelet-ca.crt"),
		KubeletCAKey:           p("kubelet-ca.key"),
		ServerCANoChain:        p("server-ca" + noChainSuffix),
		ClientCANoChain:        p("client-ca" + noChainSuffix),
		RequestHeaderCANoChain: p("request-header-ca" + noChainSuffix),
		KubeletCANoChain:       p("kubelet-ca" + noChainSuffix),
		ServiceAccountKey:      p("service.key"),
		ServingCert:            p("serving-kube-apiserver.crt"),
		ServingKey:             p("serving-kube-apiserver.key"),
		AdminCert:              p("client-admin.crt"),
		AdminKey:               p("client-admin.key"),
		ControllerCert:         p("client-controller.crt"),
		ControllerKey:          p("client-controller.key"),
		SchedulerCert:          p("client-scheduler.crt"),
		SchedulerKey:           p("client-scheduler.key"),
		APIServerKubeletCert:   p("client-kube-apiserver.crt"),
		APIServerKubeletKey:    p("client-kube-apiserver.key"),
		ProxyClientCert:        p("client-auth-proxy.crt"),
		ProxyClientKey:         p("client-auth-proxy.key"),
	}
}

// noChainSuffix ends the name of a file that holds a CA's own certificate
// alone; Inventory leaves these out, they repeat the CA's file.
const noChainSuffix = ".nochain.crt"

// caFiles are one CA's files.
type caFiles struct {
	name                   string // as the user reads it: "server CA"
	cert, key, noChain, cn string
}

// cas lists the cluster's four CAs: server, client, request-header, kubelet.
func (cp ControlPlane) cas() []caFiles {
	return []caFiles{
		{"server CA", cp.ServerCA, cp.ServerCAKey, cp.ServerCANoChain, "kubox-server-ca"},
		{"client CA", cp.ClientCA, cp.ClientCAKey, cp.ClientCANoChain, "kubox-client-ca"},
		{"request-header CA", cp.RequestHeaderCA, cp.RequestHeaderCAKey, cp.RequestHeaderCANoChain, "kubox-request-header-ca"},
		{"kubelet CA", cp.KubeletCA, cp.KubeletCAKey, cp.KubeletCANoChain, "kubox-kubelet-ca"},
	}
}

// writeNoChain keeps f's .nochain.crt the CA's own certificate.
func writeNoChain(f caFiles, ca *CA) error {
	want := encodeCert(ca.Cert.Raw)
	if have, err := os.ReadFile(f.noChain); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := atomicfile.Write(f.noChain, want, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", f.noChain, err)
	}
	return nil
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
	// Kubelets' serving certificates have a CA of their own: the names in
	// them come from joining nodes, so no client that trusts the server CA
	// may accept one, and the API server trusts only this CA for kubelets.
	var cas []*CA
	for _, f := range cp.cas() {
		ca, action, err := loadOrCreateCA(f.cert, f.key, fmt.Sprintf("%s@%d", f.cn, now.Unix()), renewBefore, now)
		switch action {
		case caCreated:
			notes = append(notes, "created "+f.name)
		case caRenewed:
			notes = append(notes, fmt.Sprintf("renewed %s (expires within %s)", f.name, within(renewBefore)))
		}
		if err != nil {
			return cp, notes, err
		}
		if err := writeNoChain(f, ca); err != nil {
			return cp, notes, err
		}
		cas = append(cas, ca)
	}
	serverCA, clientCA, requestHeaderCA := cas[0], cas[1], cas[2]

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
	for _, f := range cp.cas() {
		ca, err := loadCA(f.cert, f.key)
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
