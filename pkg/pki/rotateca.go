package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// NewCA is a replacement for one of the cluster's CAs, read from the
// directory `kubox certificate rotate-ca --path` names and checked by
// CheckNewCAs.
type NewCA struct {
	Name string // the CA it replaces, as the user reads it: "server CA"
	// CertFile and KeyFile are the replacement's files.
	CertFile, KeyFile string
	// InPlace is set when the replacement already is the cluster's CA (an
	// earlier rotate-ca wrote it): nothing to write, its certificates are
	// issued again.
	InPlace bool

	target  caFiles
	bundle  []byte // the CA file to write: the new CA, then the certificates it replaces
	keyPEM  []byte
	current []byte // the current CA file, for the backup
}

// CheckNewCAs reads the replacement CAs in dir, under the names of the
// files they replace in cp's directory (server-ca.crt and server-ca.key,
// client-ca.*, request-header-ca.*, kubelet-ca.*); a CA without files there
// stays. Each must be a CA certificate with the certificate-signing usage,
// valid now, with a key that matches it, and, unless force, be cross-signed
// by the CA it replaces: its file holds, after the new CA's certificate, a
// certificate for the same subject and key signed by the current CA (or the
// new CA's certificate is itself signed by the current CA). Then whatever the
// new CA issues also verifies for a peer that trusts only the current one.
// It writes nothing; an error is one line naming the file at fault.
func CheckNewCAs(cp ControlPlane, dir string, force bool, now time.Time) ([]NewCA, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("--path %s: %v: give the directory that holds the new CA files", dir, unwrapPathError(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("--path %s is not a directory: give the directory that holds the new CA files", dir)
	}
	var out []NewCA
	var names []string
	for _, f := range cp.cas() {
		certFile, keyFile := filepath.Join(dir, filepath.Base(f.cert)), filepath.Join(dir, filepath.Base(f.key))
		names = append(names, filepath.Base(f.cert))
		n, err := checkNewCA(f, certFile, keyFile, force, now)
		if err != nil {
			return nil, err
		}
		if n != nil {
			out = append(out, *n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--path %s holds no new CA: put a CA's certificate and key there under the name it replaces (%s, each with its .key)", dir, strings.Join(names, ", "))
	}
	return out, nil
}

// checkNewCA checks the replacement for f, nil if dir has none.
func checkNewCA(f caFiles, certFile, keyFile string, force bool, now time.Time) (*NewCA, error) {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	switch {
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return nil, nil
	case errors.Is(keyErr, os.ErrNotExist):
		return nil, fmt.Errorf("%s has no key beside it: put the new %s's key in %s", certFile, f.name, keyFile)
	case errors.Is(certErr, os.ErrNotExist):
		return nil, fmt.Errorf("%s has no certificate beside it: put the new %s's certificate in %s", keyFile, f.name, certFile)
	case certErr != nil:
		return nil, fmt.Errorf("cannot read %s: %v", certFile, unwrapPathError(certErr))
	case keyErr != nil:
		return nil, fmt.Errorf("cannot read %s: %v", keyFile, unwrapPathError(keyErr))
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: it must hold the new %s's PEM certificate first", certFile, err, f.name)
	}
	newCert := certs[0]
	if !newCert.IsCA || !newCert.BasicConstraintsValid {
		return nil, fmt.Errorf("%s is not a CA certificate (basic constraints CA:FALSE or missing): the new %s must be a CA", certFile, f.name)
	}
	if newCert.KeyUsage != 0 && newCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is a CA certificate without the certificate-signing key usage (keyCertSign): the new %s must be allowed to sign", certFile, f.name)
	}
	if !now.Before(newCert.NotAfter) || now.Before(newCert.NotBefore) {
		return nil, fmt.Errorf("%s is not valid now (valid from %s to %s)", certFile, newCert.NotBefore.UTC().Format(time.RFC3339), newCert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", keyFile, err)
	}
	if !keyMatches(newCert, key) {
		return nil, fmt.Errorf("%s does not match the certificate %s: give the new %s's own key", keyFile, certFile, f.name)
	}
	current, err := loadCA(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("the current %s: %v: run on a server, and give its --data-dir", f.name, err)
	}
	n := &NewCA{Name: f.name, CertFile: certFile, KeyFile: keyFile, target: f, keyPEM: keyPEM, current: current.CertPEM}
	if newCert.Equal(current.Cert) {
		n.InPlace = true
		return n, nil
	}
	if !force && !crossSigned(certs, current.Cert, now) {
		return nil, fmt.Errorf("%s is not cross-signed by the current %s (%s): append to it the new CA's certificate signed by the current CA's key (%s), or use --force and join every node again",
			certFile, f.name, current.Cert.Subject.CommonName, f.key)
	}
	n.bundle = trustBundle(certs, current.Bundle, now)
	return n, nil
}

// crossSigned reports whether certs (a new CA's file) holds a valid CA
// certificate for the new CA's subject and key that old signed.
func crossSigned(certs []*x509.Certificate, old *x509.Certificate, now time.Time) bool {
	for _, c := range certs {
		if c.IsCA && bytes.Equal(c.RawSubject, certs[0].RawSubject) && samePublicKey(c, certs[0]) &&
			now.Before(c.NotAfter) && c.CheckSignatureFrom(old) == nil {
			return true
		}
	}
	return false
}

// trustBundle is the CA file after a rotation: the new CA's file, then the
// certificates of the current one that are still valid, each once.
func trustBundle(newCerts, current []*x509.Certificate, now time.Time) []byte {
	var out []byte
	var seen []*x509.Certificate
	for _, c := range append(append([]*x509.Certificate{}, newCerts...), current...) {
		if !now.Before(c.NotAfter) || containsCert(seen, c) {
			continue
		}
		seen = append(seen, c)
		out = append(out, encodeCert(c.Raw)...)
	}
	return out
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, s := range certs {
		if s.Equal(c) {
			return true
		}
	}
	return false
}

// RotateCAs puts the checked replacements in place: a copy of each
// replaced CA's files goes to backupDir, then the new key, the CA file
// (the new CA with its cross-signature, then the CAs it replaces, which
// stay trusted) and its .nochain.crt. The certificates the CAs signed are
// not touched: Renew issues them again.
func RotateCAs(newCAs []NewCA, backupDir string) error {
	for _, n := range newCAs {
		if n.InPlace {
			continue
		}
		if err := backupCA(n, backupDir); err != nil {
			return err
		}
		f := n.target
		// Key first: a crash before the certificate follows leaves a pair
		// that does not match, which every reader reports.
		if err := atomicfile.Write(f.key, n.keyPEM, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", f.key, err)
		}
		if err := atomicfile.Write(f.cert, n.bundle, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", f.cert, err)
		}
		ca, err := loadCA(f.cert, f.key)
		if err != nil {
			return err
		}
		if err := writeNoChain(f, ca); err != nil {
			return err
		}
	}
	return nil
}

// backupCA copies the CA n replaces into dir (created 0700).
func backupCA(n NewCA, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the backup directory %s: %w", dir, err)
	}
	key, err := os.ReadFile(n.target.key)
	if err != nil {
		return err
	}
	for _, fl := range []struct {
		name string
		data []byte
	}{{filepath.Base(n.target.cert), n.current}, {filepath.Base(n.target.key), key}} {
		if err := atomicfile.Write(filepath.Join(dir, fl.name), fl.data, 0o600); err != nil {
			return fmt.Errorf("backing up the %s: %w", n.Name, err)
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// NewCrossSignedCA makes a replacement for current, as `kubox certificate
// rotate-ca` takes it: a new key and a self-signed CA certificate for
// commonName, followed by the same subject and key signed by current.
func NewCrossSignedCA(current *CA, commonName string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := caTemplate(now)
	tmpl.Subject = pkix.Name{CommonName: commonName}
	next := &CA{Key: key, CertFile: commonName}
	if err := next.selfSign(tmpl); err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	cross := caTemplate(now)
	cross.SerialNumber = serial
	cross.RawSubject = next.Cert.RawSubject
	cross.SubjectKeyId = next.Cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, cross, current.Cert, key.Public(), current.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("cross-signing with %s: %w", current.CertFile, err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	return append(next.CertPEM, encodeCert(der)...), keyPEM, nil
}
