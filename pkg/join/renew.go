package join

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// Renewer keeps a joined node's certificates fresh while it runs: when two
// thirds of a certificate's life have passed it asks the server for new ones
// with the node's own client certificate, and replaces the files, which the
// kubelet and every client of the node's kubeconfig reload by themselves.
type Renewer struct {
	Dir       string // the node's credential directory, as WriteBundle wrote it
	ServerURL string // where to renew, e.g. the node's API balancer
	APIURL    string // what the node's kubeconfig points at
	Request   NodeRequest
	// RenewBefore bounds how early before expiry a renewal is due.
	RenewBefore time.Duration
	Log         *logging.Logger
}

const (
	renewRetryMin = 10 * time.Second
	renewRetryMax = time.Minute
	// renewRecheck bounds a wait, so that a clock step is noticed.
	renewRecheck = time.Hour
)

// Run renews whenever a certificate is due, until ctx ends.
func (r *Renewer) Run(ctx context.Context) error {
	retry := renewRetryMin
	for {
		due, err := r.Due()
		if err != nil {
			r.Log.Warnf("%v: renewing now", err)
			due = time.Now()
		}
		wait := min(time.Until(due), renewRecheck)
		if wait <= 0 {
			b, err := r.RenewNow(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				r.Log.Warnf("cannot renew the node's certificates yet: %v; retrying in %s", err, retry)
				wait, retry = retry, min(2*retry, renewRetryMax)
			} else {
				retry = renewRetryMin
				if cert, err := parseCertPEM(b.Node.Cert); err == nil {
					r.Log.Infof("renewed the node's certificates, valid until %s", cert.NotAfter.UTC().Format(time.RFC3339))
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Due is when the first of the node's certificates needs renewing.
func (r *Renewer) Due() (time.Time, error) {
	creds := config.NodeCredentialsIn(r.Dir)
	node, err := pki.ReadCredential(creds.Credential)
	if err != nil {
		return time.Time{}, err
	}
	due := pki.RenewAt(node.Leaf, r.RenewBefore)
	data, err := os.ReadFile(creds.ServingCert)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the kubelet serving certificate: %w", err)
	}
	serving, err := parseCertPEM(string(data))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", creds.ServingCert, err)
	}
	if at := pki.RenewAt(serving, r.RenewBefore); at.Before(due) {
		due = at
	}
	return due, nil
}

// RenewNow renews the node's certificates and writes them.
func (r *Renewer) RenewNow(ctx context.Context) (*NodeBundle, error) {
	creds := config.NodeCredentialsIn(r.Dir)
	cred, err := pki.ReadCredential(creds.Credential)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(creds.ServerCAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the saved server CA: %w", err)
	}
	b, err := Renew(ctx, r.ServerURL, ca, cred, r.Request, JoinOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := WriteBundle(r.Dir, r.APIURL, b); err != nil {
		return nil, err
	}
	return b, nil
}

// parseCertPEM parses the first certificate of a PEM text.
func parseCertPEM(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
