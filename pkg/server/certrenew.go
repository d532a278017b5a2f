package server

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// expiryWarning is how close to expiry a certificate that could not be
// renewed gets a warning on every check.
const expiryWarning = 30 * 24 * time.Hour

// renewCertificates keeps every certificate the server issued to itself
// valid while it runs: the control plane's, metrics-server's and its own
// node's. Each is replaced once two thirds of its life have passed (at
// most 120 days before expiry); the API server, the controllers and the
// node's clients load the new files on their next connection or file
// event, so nothing restarts. The admin kubeconfig, which embeds its
// certificate so that it can be copied, is written again.
func (s *Server) renewCertificates(ctx context.Context, log *logging.Logger) error {
	cfg := s.cfg
	for {
		next, err := s.renewDue(log)
		if err != nil {
			log.Errorf("certificate renewal failed, retrying in a minute: %v", err)
			next = time.Now().Add(time.Minute)
		}
		s.warnExpiring(log, cfg.Paths.CertDirs()...)
		// Checked at least hourly, so that a suspended machine or a clock
		// change is noticed.
		wait := min(max(time.Until(next), time.Second), time.Hour)
		if next.IsZero() {
			wait = time.Hour
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// renewDue renews what is due and returns when the next one is.
func (s *Server) renewDue(log *logging.Logger) (time.Time, error) {
	cfg, certs := s.cfg, s.certs
	now := time.Now()
	cas, err := pki.LoadCAs(certs)
	if err != nil {
		return time.Time{}, err
	}
	renewed, next, err := pki.RenewDue(cas, config.CertRenewBefore, now, cfg.Paths.CertDirs()...)
	for _, r := range renewed {
		log.Infof("renewed certificate %s, valid until %s", r.Name, r.NotAfter.UTC().Format(time.RFC3339))
		if r.Name == "client-admin" {
			if werr := s.writeAdminKubeconfig(); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return next, err
}

// writeAdminKubeconfig writes the user's admin kubeconfig with the admin
// certificate embedded.
func (s *Server) writeAdminKubeconfig() error {
	cfg, certs := s.cfg, s.certs
	caPEM, err := os.ReadFile(certs.ServerCA)
	if err != nil {
		return err
	}
	if err := pki.WriteKubeconfig(cfg.Kubeconfig, cfg.LocalURL(), caPEM, certs.AdminCert, certs.AdminKey, cfg.KubeconfigMode); err != nil {
		return fmt.Errorf("cannot write the admin kubeconfig: %w; check --write-kubeconfig", err)
	}
	return nil
}

// warnExpiring logs every certificate that expires within expiryWarning:
// one renewal should have replaced it long before. Certificates chosen to
// live less than that (a short --cert-validity) are not warned about.
func (s *Server) warnExpiring(log *logging.Logger, dirs ...string) {
	if s.cfg.CertValidity < expiryWarning || s.cfg.NodeCertValidity < expiryWarning {
		return
	}
	list, err := pki.Inventory(dirs...)
	if err != nil {
		return
	}
	now := time.Now()
	for _, c := range list {
		if c.NotAfter.Sub(now) < expiryWarning {
			log.Warnf("certificate %s expires in %d days (%s); see kubox certificate check", c.Name, c.DaysLeft(now), c.File)
		}
	}
}
