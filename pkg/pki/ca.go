// Package pki owns the cluster's certificate authority files: it creates,
// loads and renews the CAs, the certificates and keys they sign, the
// service-account signing key, the join token and the kubeconfigs that embed
// them. Every operation is idempotent: existing valid files are reused, so
// restarting kubox never changes a credential that is still good.
package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// Backdating NotBefore tolerates nodes whose clocks lag the server's.
	clockSkew = time.Hour
)

// SANs are the names and addresses a serving certificate must hold.
type SANs struct {
	DNSNames []string
	IPs      []net.IP
}

// CA is a loaded certificate authority. Its certificate file starts with
// the CA's own certificate, which signs; after `kubox certificate
// rotate-ca` the CA's cross-signed certificates and the CAs it replaced
// follow, so that the file as a whole is the trust bundle for what it signs.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // the CA certificate file as written, for trust bundles
	// Bundle is every certificate in CertPEM, Cert first.
	Bundle []*x509.Certificate
	// Chain holds the certificates for this CA's key that another CA
	// signed (a cross-signature by the CA it replaced), PEM-encoded. Sign
	// appends it to every certificate, so that a peer that trusts only the
	// replaced CA still verifies what this one issues.
	Chain    []byte
	CertFile string
	KeyFile  string
}

// caAction says what loadOrCreateCA did, for EnsureControlPlane's notes.
type caAction int

const (
	caLoaded caAction = iota
	caCreated
	caRenewed
)

// LoadOrCreateCA loads certFile/keyFile if both exist and are a valid CA pair
// (key matches cert, IsCA); creates a new ECDSA P-256 self-signed CA
// (CN=commonName, valid 10 years) if neither exists. If the CA certificate
// expires within renewBefore, it re-issues the CA certificate with the same key
// and subject, so certificates it signed still verify, and writes it back.
// If only one of the two files exists, or they do not match, or a file is not
// parseable PEM, it returns an error naming the file and writes nothing.
func LoadOrCreateCA(certFile, keyFile, commonName string, renewBefore time.Duration, now time.Time) (*CA, error) {
	ca, _, err := loadOrCreateCA(certFile, keyFile, commonName, renewBefore, now)
	return ca, err
}

func loadOrCreateCA(certFile, keyFile, commonName string, renewBefore time.Duration, now time.Time) (*CA, caAction, error) {
	certExists, err := exists(certFile)
	if err != nil {
		return nil, 0, fmt.Errorf("checking CA certificate %s: %w", certFile, err)
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return nil, 0, fmt.Errorf("checking CA key %s: %w", keyFile, err)
	}
	switch {
	case !certExists && !keyExists:
		ca, err := createCA(certFile, keyFile, commonName, now)
		return ca, caCreated, err
	case !keyExists:
		// Generating a new key would orphan every certificate the existing CA
		// signed, so a half-present CA needs a human.
		return nil, 0, fmt.Errorf("CA certificate %s exists but its key %s does not", certFile, keyFile)
	case !certExists:
		return nil, 0, fmt.Errorf("CA key %s exists but its certificate %s does not", keyFile, certFile)
	}

	ca, err := loadCA(certFile, keyFile)
	if err != nil {
		return nil, 0, err
	}
	// Only a self-signed CA can be renewed here; an intermediate signed by
	// someone else's root must be renewed by whoever owns that root.
	if !ca.Cert.NotAfter.After(now.Add(renewBefore)) && isSelfSigned(ca.Cert) {
		if err := renewCA(ca, now); err != nil {
			return nil, 0, err
		}
		return ca, caRenewed, nil
	}
	return ca, caLoaded, nil
}

func loadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate %s: %w", certFile, err)
	}
	bundle, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate %s: %w", certFile, err)
	}
	cert := bundle[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %s is not a CA certificate (basic constraints CA:FALSE or missing)", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA key %s: %w", keyFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing CA key %s: %w", keyFile, err)
	}
	if !keyMatches(cert, key) {
		return nil, fmt.Errorf("CA key %s does not match CA certificate %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, Bundle: bundle, Chain: chainOf(bundle), CertFile: certFile, KeyFile: keyFile}, nil
}

// chainOf is what a CA whose file holds bundle hands out with every
// certificate it signs: the certificates for its key that are not
// self-signed (cross-signed by another CA, or the CA's own certificate
// when another CA issued it).
func chainOf(bundle []*x509.Certificate) []byte {
	var chain []byte
	for _, c := range bundle {
		if samePublicKey(c, bundle[0]) && !isSelfSigned(c) {
			chain = append(chain, encodeCert(c.Raw)...)
		}
	}
	return chain
}

func createCA(certFile, keyFile, commonName string, now time.Time) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("generating CA key %s: %w", keyFile, err)
	}
	tmpl := caTemplate(now)
	tmpl.Subject = pkix.Name{CommonName: commonName}
	ca := &CA{Key: key, CertFile: certFile, KeyFile: keyFile}
	if err := ca.selfSign(tmpl); err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding CA key %s: %w", keyFile, err)
	}
	// Key first: if we crash in between, the next start reports the
	// half-written CA instead of silently trusting a certificate without a key.
	if err := atomicfile.Write(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing CA key %s: %w", keyFile, err)
	}
	if err := atomicfile.Write(certFile, ca.CertPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing CA certificate %s: %w", certFile, err)
	}
	return ca, nil
}

// renewCA re-issues ca's certificate with the same key, subject and subject
// key ID, so chains built from existing leaves (by issuer name and authority
// key ID) still find it and their signatures still check. The rest of the
// bundle (cross-signed certificates, replaced CAs) stays behind it.
func renewCA(ca *CA, now time.Time) error {
	tmpl := caTemplate(now)
	tmpl.RawSubject = ca.Cert.RawSubject
	tmpl.SubjectKeyId = ca.Cert.SubjectKeyId
	rest := ca.Bundle[1:]
	if err := ca.selfSign(tmpl); err != nil {
		return err
	}
	for _, c := range rest {
		ca.CertPEM = append(ca.CertPEM, encodeCert(c.Raw)...)
	}
	ca.Bundle = append([]*x509.Certificate{ca.Cert}, rest...)
	if err := atomicfile.Write(ca.CertFile, ca.CertPEM, 0o600); err != nil {
		return fmt.Errorf("writing renewed CA certificate %s: %w", ca.CertFile, err)
	}
	return nil
}

func caTemplate(now time.Time) *x509.Certificate {
	return &x509.Certificate{
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// selfSign signs tmpl with ca.Key and stores the result in ca.Cert and ca.CertPEM.
func (ca *CA) selfSign(tmpl *x509.Certificate) error {
	serial, err := newSerial()
	if err != nil {
		return fmt.Errorf("generating serial for CA certificate %s: %w", ca.CertFile, err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ca.Key.Public(), ca.Key)
	if err != nil {
		return fmt.Errorf("signing CA certificate %s: %w", ca.CertFile, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parsing new CA certificate %s: %w", ca.CertFile, err)
	}
	ca.Cert = cert
	ca.CertPEM = encodeCert(der)
	ca.Bundle = []*x509.Certificate{cert}
	return nil
}

func isSelfSigned(cert *x509.Certificate) bool {
	return cert.CheckSignatureFrom(cert) == nil
}
