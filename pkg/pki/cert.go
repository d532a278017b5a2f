package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// CertSpec describes a leaf certificate.
type CertSpec struct {
	CommonName   string
	Organization []string
	SANs         SANs
	Server       bool // ExtKeyUsageServerAuth
	Client       bool // ExtKeyUsageClientAuth
	// Validity is how long the certificate is valid; 0 means 365 days.
	Validity time.Duration
}

func (s CertSpec) extKeyUsage() []x509.ExtKeyUsage {
	var u []x509.ExtKeyUsage
	if s.Server {
		u = append(u, x509.ExtKeyUsageServerAuth)
	}
	if s.Client {
		u = append(u, x509.ExtKeyUsageClientAuth)
	}
	return u
}

// certAction says what ensureCert did and why, for EnsureControlPlane's notes.
type certAction struct {
	verb string // "" (reused), "created", "renewed" or "re-issued"
	why  string // optional reason, shown in parentheses
}

// EnsureCert makes certFile/keyFile hold a certificate for spec signed by ca,
// valid 365 days. It reuses the existing pair (reused=true) when both files
// parse, the key matches the certificate, the certificate verifies against ca,
// does not expire within renewBefore, has the spec's CommonName, Organization
// and extended key usages, and holds every DNS name and IP in spec.SANs.
// Otherwise it writes a new pair with a new ECDSA P-256 key. Both files are
// written atomically with mode 0600.
func (ca *CA) EnsureCert(certFile, keyFile string, spec CertSpec, renewBefore time.Duration, now time.Time) (reused bool, err error) {
	a, err := ca.ensureCert(certFile, keyFile, spec, renewBefore, now)
	return a.verb == "", err
}

func (ca *CA) ensureCert(certFile, keyFile string, spec CertSpec, renewBefore time.Duration, now time.Time) (certAction, error) {
	a, err := ca.checkCert(certFile, keyFile, spec, renewBefore, now)
	if err != nil || a.verb == "" {
		return a, err
	}
	return a, ca.issue(certFile, keyFile, spec, now)
}

// checkCert decides whether the existing pair can stay. Unlike a CA, a leaf is
// derived data: anything wrong with it is repaired by issuing a new one, and
// only I/O errors other than absence are reported.
func (ca *CA) checkCert(certFile, keyFile string, spec CertSpec, renewBefore time.Duration, now time.Time) (certAction, error) {
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, os.ErrNotExist) {
		return certAction{verb: "created"}, nil
	} else if err != nil {
		return certAction{}, fmt.Errorf("reading certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return certAction{verb: "created"}, nil
	} else if err != nil {
		return certAction{}, fmt.Errorf("reading key %s: %w", keyFile, err)
	}

	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return certAction{"re-issued", "existing certificate unreadable"}, nil
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return certAction{"re-issued", "existing key unreadable"}, nil
	}
	if !keyMatches(cert, key) {
		return certAction{"re-issued", "key did not match certificate"}, nil
	}
	// Expiry first, so an expired certificate is reported as such rather than
	// as failing verification.
	if !cert.NotAfter.After(now) {
		return certAction{"renewed", "expired"}, nil
	}
	if !cert.NotAfter.After(now.Add(renewBefore)) {
		return certAction{"renewed", "expires within " + within(renewBefore)}, nil
	}
	usages := spec.extKeyUsage()
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: usages}); err != nil {
		return certAction{"re-issued", "not valid for the current CA"}, nil
	}
	if cert.Subject.CommonName != spec.CommonName || !slices.Equal(cert.Subject.Organization, spec.Organization) {
		return certAction{"re-issued", "subject changed"}, nil
	}
	if !sameUsages(cert, spec.extKeyUsage()) {
		return certAction{"re-issued", "key usage changed"}, nil
	}
	for _, name := range spec.SANs.DNSNames {
		if !slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return certAction{"re-issued", "new SAN " + name}, nil
		}
	}
	for _, ip := range spec.SANs.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return certAction{"re-issued", "new SAN " + ip.String()}, nil
		}
	}
	return certAction{}, nil
}

func sameUsages(cert *x509.Certificate, want []x509.ExtKeyUsage) bool {
	if len(cert.UnknownExtKeyUsage) > 0 || len(cert.ExtKeyUsage) != len(want) {
		return false
	}
	for _, u := range want {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			return false
		}
	}
	return true
}

// issue writes a new key and a certificate for spec signed by ca.
func (ca *CA) issue(certFile, keyFile string, spec CertSpec, now time.Time) error {
	certPEM, keyPEM, err := ca.Sign(spec, now)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", certFile, err)
	}
	return writePair(certFile, keyFile, certPEM, keyPEM)
}

// writePair replaces a key and its certificate. If we crash between the two
// writes, the pair no longer matches and the next run re-issues it.
func writePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := atomicfile.Write(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("writing key %s: %w", keyFile, err)
	}
	if err := atomicfile.Write(certFile, certPEM, 0o600); err != nil {
		return fmt.Errorf("writing certificate %s: %w", certFile, err)
	}
	return nil
}

// Sign returns a new ECDSA P-256 key and a certificate for spec signed by ca,
// valid for spec.Validity (365 days by default), both PEM-encoded. It is for credentials that are
// handed to someone else (a joining node) rather than written here. The
// certificate is followed by ca.Chain, if the CA has one.
func (ca *CA) Sign(spec CertSpec, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("generating serial: %w", err)
	}
	validity := spec.Validity
	if validity <= 0 {
		validity = leafValidity
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.CommonName, Organization: spec.Organization},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  spec.extKeyUsage(),
		DNSNames:     uniqueNames(spec.SANs.DNSNames),
		IPAddresses:  uniqueIPs(spec.SANs.IPs),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key: %w", err)
	}
	return append(encodeCert(der), ca.Chain...), keyPEM, nil
}

func uniqueNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
			out = append(out, n)
		}
	}
	return out
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if ip != nil && !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// EnsureKey makes path hold a PEM private key, creating an ECDSA P-256 key
// ("EC PRIVATE KEY", mode 0600) if the file is missing. An existing file that
// does not parse is an error naming it; it is never overwritten, because
// replacing the service-account key would invalidate every issued token.
func EnsureKey(path string) error {
	_, err := ensureKey(path)
	return err
}

func ensureKey(path string) (created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if _, err := parseKeyPEM(data); err != nil {
			return false, fmt.Errorf("parsing key %s: %w", path, err)
		}
		return false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("reading key %s: %w", path, err)
	}
	key, err := newKey()
	if err != nil {
		return false, fmt.Errorf("generating key %s: %w", path, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return false, fmt.Errorf("encoding key %s: %w", path, err)
	}
	if err := atomicfile.Write(path, keyPEM, 0o600); err != nil {
		return false, fmt.Errorf("writing key %s: %w", path, err)
	}
	return true, nil
}
