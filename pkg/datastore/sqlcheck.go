package datastore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	kinetls "github.com/k3s-io/kine/pkg/tls"
)

// kine's own database name when the endpoint names none.
const defaultDatabase = "kubernetes"

// errCredentials marks a database that answered and refused the user.
var errCredentials = errors.New("credentials refused")

// checkSQL connects to a Postgres or MySQL datastore once before kine
// does, so that a malformed endpoint or refused credentials end the
// server at once, and an unreachable database after ReachTimeout, each
// with one line naming the endpoint (password masked). kine itself
// retries every failure for minutes and only logs why.
func (d *Datastore) checkSQL(ctx context.Context) error {
	kind, ep := d.cfg.Kind(), redact(d.cfg.Endpoint)
	var connect func(context.Context) error
	var err error
	switch kind {
	case "postgres":
		connect, err = d.postgresConnect()
	case "mysql":
		connect, err = d.mysqlConnect()
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid --datastore-endpoint %s: %s; use %s", ep, d.scrub(err), dsnExample[kind])
	}
	ctx, cancel := context.WithTimeout(ctx, d.ReachTimeout)
	defer cancel()
	for {
		attempt, stop := context.WithTimeout(ctx, 3*time.Second)
		err = connect(attempt)
		stop()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errCredentials):
			return fmt.Errorf("the %s datastore at %s refused the login: %s; check the user and password in --datastore-endpoint", kind, ep, d.scrub(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot reach the %s datastore at %s within %s: %s; check --datastore-endpoint and that the database is running", kind, ep, d.ReachTimeout, d.scrub(err))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var dsnExample = map[string]string{
	"postgres": "postgres://user:password@host:5432/database",
	"mysql":    "mysql://user:password@tcp(host:3306)/database",
}

// postgresConnect parses the endpoint as kine does (its TLS files as
// sslrootcert, sslcert and sslkey) and returns one connection attempt.
func (d *Datastore) postgresConnect() (func(context.Context) error, error) {
	u, err := url.Parse(d.cfg.Endpoint)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the password
		}
		return nil, err
	}
	q := u.Query()
	tlsParams := false
	for param, file := range map[string]string{"sslrootcert": d.cfg.CAFile, "sslcert": d.cfg.CertFile, "sslkey": d.cfg.KeyFile} {
		if file != "" && !q.Has(param) {
			q.Set(param, file)
			tlsParams = true
		}
	}
	if tlsParams && !q.Has("sslmode") {
		q.Set("sslmode", "verify-full")
	}
	u.RawQuery = q.Encode()
	if u.Path == "" || u.Path == "/" {
		u.Path = "/" + defaultDatabase
	}
	cfg, err := pgconn.ParseConfig(u.String())
	if err != nil {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			err = pe.Unwrap()
		}
		return nil, err
	}
	return func(ctx context.Context) error {
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn.Close(ctx)
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch pe.Code {
			case "3D000":
				return nil // no such database: kine creates it
			case "28P01", "28000":
				return fmt.Errorf("%w: %s", errCredentials, pe.Message)
			}
		}
		return err
	}, nil
}

// mysqlConnect parses the endpoint as kine does and returns one
// connection attempt.
func (d *Datastore) mysqlConnect() (func(context.Context) error, error) {
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(d.cfg.Endpoint, "mysql://"))
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		cfg.DBName = defaultDatabase
	}
	tlsCfg, err := kinetls.Config{CAFile: d.cfg.CAFile, CertFile: d.cfg.CertFile, KeyFile: d.cfg.KeyFile}.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the TLS files: %v", err)
	}
	cfg.TLS = tlsCfg
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		conn, err := connector.Connect(ctx)
		if err == nil {
			return conn.Close()
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			switch me.Number {
			case 1049:
				return nil // no such database: kine creates it
			case 1044, 1045, 1698:
				return fmt.Errorf("%w: %s", errCredentials, me.Message)
			}
		}
		return err
	}, nil
}

// scrub hides the endpoint's password wherever a driver's message
// repeats it, and puts the message on one line.
func (d *Datastore) scrub(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if pw := endpointPassword(d.cfg.Endpoint); pw != "" {
		msg = strings.ReplaceAll(msg, pw, "***")
		if esc, uerr := url.PathUnescape(pw); uerr == nil && esc != "" {
			msg = strings.ReplaceAll(msg, esc, "***")
		}
	}
	return msg
}
