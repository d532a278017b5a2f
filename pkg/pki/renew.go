package pki

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Renewed is one certificate RenewDue replaced.
type Renewed struct {
	Name     string
	NotAfter time.Time
}

// RenewDue replaces every leaf certificate in dirs whose renewal time
// (RenewAt with renewBefore) has come: a new key and a certificate with the
// same subject, names, usages and lifetime, signed by the CA in cas that
// issued it. A *.crt is paired with the *.key of the same name; a *.pem is a
// credential file, replaced whole. It returns what it renewed, and the
// earliest renewal time of what remains (zero if nothing does).
func RenewDue(cas []*CA, renewBefore time.Duration, now time.Time, dirs ...string) ([]Renewed, time.Time, error) {
	return renewWhere(cas, renewBefore, now, func(*x509.Certificate, CertInfo) bool { return false }, dirs)
}

// Renew replaces the named leaf certificates in dirs now, whatever their
// expiry (all of them when names is empty), as RenewDue would. Names are
// as Inventory gives them; one that matches nothing is an error.
func Renew(cas []*CA, names []string, now time.Time, dirs ...string) ([]Renewed, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	renewed, _, err := renewWhere(cas, 0, now, func(_ *x509.Certificate, ci CertInfo) bool {
		return len(want) == 0 || want[ci.Name]
	}, dirs)
	if err != nil {
		return renewed, err
	}
	for _, r := range renewed {
		delete(want, r.Name)
	}
	for n := range want {
		return renewed, fmt.Errorf("no certificate %q that kubox renews; see kubox certificate check", n)
	}
	return renewed, nil
}

// renewWhere replaces the leaves that are due, or that force picks.
func renewWhere(cas []*CA, renewBefore time.Duration, now time.Time, force func(*x509.Certificate, CertInfo) bool, dirs []string) ([]Renewed, time.Time, error) {
	certs, err := Inventory(dirs...)
	if err != nil {
		return nil, time.Time{}, err
	}
	var renewed []Renewed
	var next time.Time
	for _, ci := range certs {
		if ci.CA {
			continue
		}
		cert, err := loadCertFile(ci.File)
		if err != nil {
			return renewed, next, err
		}
		at := RenewAt(cert, renewBefore)
		if at.After(now) && !force(cert, ci) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		ca := issuerOf(cert, cas)
		if ca == nil {
			continue // not one of this cluster's (a user's own file)
		}
		if filepath.Ext(ci.File) == ".pem" {
			if _, err := ReadCredential(ci.File); err != nil {
				continue // a certificate alone, not a credential kubox wrote
			}
		}
		spec := specOf(cert)
		certPEM, keyPEM, err := ca.Sign(spec, now)
		if err != nil {
			return renewed, next, fmt.Errorf("renewing %s: %w", ci.File, err)
		}
		if filepath.Ext(ci.File) == ".pem" {
			err = WriteCredential(ci.File, certPEM, keyPEM)
		} else {
			err = writePair(ci.File, strings.TrimSuffix(ci.File, ".crt")+".key", certPEM, keyPEM)
		}
		if err != nil {
			return renewed, next, err
		}
		renewed = append(renewed, Renewed{Name: ci.Name, NotAfter: now.Add(spec.Validity)})
		if at := now.Add(spec.Validity - min(spec.Validity/3, renewBefore)); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return renewed, next, nil
}

func loadCertFile(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return cert, nil
}

// issuerOf is the CA among cas whose key, or the key of a CA it replaced
// (in its bundle), signed cert.
func issuerOf(cert *x509.Certificate, cas []*CA) *CA {
	for _, ca := range cas {
		if ca == nil {
			continue
		}
		for _, c := range append([]*x509.Certificate{ca.Cert}, ca.Bundle...) {
			if c.IsCA && cert.CheckSignatureFrom(c) == nil {
				return ca
			}
		}
	}
	return nil
}

// specOf is the spec cert was issued for, its lifetime included.
func specOf(cert *x509.Certificate) CertSpec {
	s := CertSpec{
		CommonName:   cert.Subject.CommonName,
		Organization: cert.Subject.Organization,
		SANs:         SANs{DNSNames: cert.DNSNames, IPs: cert.IPAddresses},
		Validity:     cert.NotAfter.Sub(cert.NotBefore.Add(clockSkew)),
	}
	for _, u := range cert.ExtKeyUsage {
		s.Server = s.Server || u == x509.ExtKeyUsageServerAuth
		s.Client = s.Client || u == x509.ExtKeyUsageClientAuth
	}
	return s
}
