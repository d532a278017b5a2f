package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kubox-io/kubox/pkg/bootstrap"
	"github.com/kubox-io/kubox/pkg/datastore"
	"github.com/kubox-io/kubox/pkg/join"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/pki"
)

// tokenSecret is the server token's secret: --token's, checked against
// the token file of a server that has one, or the token file's; "" when
// neither exists yet.
func (s *Server) tokenSecret() (string, error) {
	path := s.cfg.Paths.TokenFile
	var mine string
	if data, err := os.ReadFile(path); err == nil {
		t, err := join.ParseToken(string(data))
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		mine = t.Secret
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if s.cfg.Token == "" {
		return mine, nil
	}
	t, err := join.ParseToken(s.cfg.Token)
	if err != nil {
		return "", fmt.Errorf("--token: %w", err)
	}
	if _, ok := t.BootstrapID(); ok {
		return "", errors.New("--token is an agents' bootstrap token: give the server token (<data-dir>/server/token on a server of the cluster, or a new one from 'openssl rand -hex 32')")
	}
	if mine != "" && mine != t.Secret {
		return "", fmt.Errorf("--token is not this server's token (%s): start it with that token, or without --token", path)
	}
	return t.Secret, nil
}

// syncShared reconciles the files servers share with the record an
// external SQL datastore keeps of them, sealed with the server token.
// preferStored settles files that differ for the record's copy.
func (s *Server) syncShared(ds *datastore.Datastore, secret string, preferStored bool) (bootstrap.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ds.ReachTimeout+30*time.Second)
	defer cancel()
	var r bootstrap.Result
	err := ds.WithRecord(ctx, datastore.BootstrapKey, func(rec *datastore.Record) error {
		var err error
		r, err = bootstrap.Sync{Dir: s.cfg.Paths.ServerDir, Names: sharedFiles, Secret: secret, Store: rec, PreferStored: preferStored}.Run(ctx)
		if err != nil && !errors.Is(err, bootstrap.ErrNoToken) && !errors.Is(err, bootstrap.ErrWrongToken) {
			return fmt.Errorf("cannot share the cluster's files through the datastore at %s: %w", ds.Where(), err)
		}
		return err
	})
	switch {
	case errors.Is(err, bootstrap.ErrNoToken):
		return r, fmt.Errorf("the datastore at %s holds a cluster already: start this server with --token and the server token (<data-dir>/server/token on a server of that cluster)", ds.Where())
	case errors.Is(err, bootstrap.ErrWrongToken):
		return r, fmt.Errorf("the server token does not open the cluster's files in the datastore at %s: start this server with --token and the token of that cluster (<data-dir>/server/token on one of its servers)", ds.Where())
	case err != nil:
		return r, err
	}
	return r, nil
}

// shareFiles runs New's steps for a server on an external SQL datastore:
// the cluster's shared files are taken from the datastore before anything
// is made, and this server's stored there once prepared. A server that
// made its CAs while another stored its own first takes those and
// prepares again, so that its certificates come from them.
func (s *Server) shareFiles(log *logging.Logger) error {
	ds := datastore.New(s.cfg.Datastore, s.cfg.Paths)
	secret, err := s.tokenSecret()
	if err != nil {
		return err
	}
	pulled, err := s.syncShared(ds, secret, false)
	if err != nil {
		return err
	}
	if len(pulled.Written) > 0 {
		log.Infof("took the cluster's CAs and keys from the datastore at %s", ds.Where())
	}
	if err := s.ensureTokenFile(secret); err != nil {
		return err
	}
	if err := s.prepare(log); err != nil {
		return err
	}
	if secret, err = s.tokenSecret(); err != nil {
		return err
	}
	pushed, err := s.syncShared(ds, secret, !pulled.Found)
	if err != nil {
		return err
	}
	if len(pushed.Stored) > 0 {
		log.Infof("stored %d shared files in the datastore at %s, sealed with the server token", len(pushed.Stored), ds.Where())
	}
	if len(pushed.Written) == 0 {
		return nil
	}
	log.Infof("another server stored the cluster's CAs first: taking them from the datastore at %s", ds.Where())
	return s.prepare(log)
}

// prepareWithToken prepares a server whose --token sets its server token.
func (s *Server) prepareWithToken(log *logging.Logger) error {
	secret, err := s.tokenSecret()
	if err != nil {
		return err
	}
	if err := s.ensureTokenFile(secret); err != nil {
		return err
	}
	return s.prepare(log)
}

// ensureTokenFile makes secret the server token, unless the server has one
// (tokenSecret checked that it is the same) or secret is "".
func (s *Server) ensureTokenFile(secret string) error {
	if secret == "" {
		return nil
	}
	if _, err := os.Stat(s.cfg.Paths.TokenFile); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return pki.WriteToken(s.cfg.Paths.TokenFile, secret)
}
