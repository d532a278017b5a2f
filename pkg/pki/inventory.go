package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CertInfo describes one certificate file kubox keeps.
type CertInfo struct {
	Name     string    `json:"name"` // the file name without its extension
	File     string    `json:"file"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"notAfter"`
	CA       bool      `json:"ca"`
}

// DaysLeft is how many whole days remain before the certificate expires;
// negative once it has.
func (c CertInfo) DaysLeft(now time.Time) int {
	return int(c.NotAfter.Sub(now).Hours() / 24)
}

// Inventory reads every certificate in dirs (*.crt but a CA's *.nochain.crt
// copy, and the *.pem files that hold a certificate with its key), sorted
// by directory and name; a file's first certificate counts. A
// directory that does not exist is skipped: a server without a node has no
// agent certificates.
func Inventory(dirs ...string) ([]CertInfo, error) {
	var out []CertInfo
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", dir, err)
		}
		var found []CertInfo
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || (ext != ".crt" && ext != ".pem") || strings.HasSuffix(e.Name(), noChainSuffix) {
				continue
			}
			file := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("cannot read %s: %w", file, err)
			}
			cert, err := parseCertPEM(data)
			if err != nil {
				continue // a key or other PEM file, not a certificate
			}
			found = append(found, CertInfo{
				Name: strings.TrimSuffix(e.Name(), ext), File: file,
				Subject: cert.Subject.CommonName, Issuer: cert.Issuer.CommonName,
				NotAfter: cert.NotAfter.UTC(), CA: cert.IsCA,
			})
		}
		sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
		out = append(out, found...)
	}
	return out, nil
}
