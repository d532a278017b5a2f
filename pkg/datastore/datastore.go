// Package datastore runs kine in-process: it serves the etcd API on a unix
// socket inside the data dir and stores cluster state in SQLite (default),
// PostgreSQL or MySQL; for an etcd endpoint it checks that etcd answers and
// hands the endpoint straight to the API server; with --cluster-init it
// runs an etcd member in-process (embedded.go).
package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/endpoint"
	kinetls "github.com/k3s-io/kine/pkg/tls"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/config/paths"
)

// Endpoint is what the API server needs to reach the datastore.
type Endpoint struct {
	Servers     []string // etcd URLs (unix:// for kine)
	CAFile      string
	CertFile    string
	KeyFile     string
	LeaderElect bool // whether controllers must elect a leader
}

// Datastore is the datastore component.
type Datastore struct {
	cfg          config.Datastore
	paths        paths.Paths
	ReachTimeout time.Duration // how long an external datastore may take to answer
	// JoinPeers are the client URLs of an existing cluster's members, for
	// an embedded member that joins it (its first start with --server).
	JoinPeers []string
	// Log receives what the datastore does that takes a while; nil for none.
	Log interface{ Infof(string, ...any) }
	// Metrics receives kine's figures (SQL statements' durations by name,
	// compactions); nil for none.
	Metrics prometheus.Registerer

	mu       sync.Mutex
	endpoint Endpoint
	cancel   context.CancelFunc
	wg       *sync.WaitGroup
	embedded *embed.Etcd
	stopping bool // Stop was called: the member's end is expected
}

// DefaultReachTimeout bounds how long an external datastore may take to
// answer when the server starts: long enough for a database that starts
// beside kubox, short enough that a wrong address is reported promptly.
const DefaultReachTimeout = 10 * time.Second

// New returns the datastore component for cfg.
func New(cfg config.Datastore, p paths.Paths) *Datastore {
	return &Datastore{cfg: cfg, paths: p, ReachTimeout: DefaultReachTimeout}
}

// Name implements component.Component.
func (d *Datastore) Name() string { return "datastore" }

// Endpoint is valid once Start returned.
func (d *Datastore) Endpoint() Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endpoint
}

// Init implements component.Initializer: an SQLite file that is not a
// database is refused before anything starts, and left untouched.
func (d *Datastore) Init(context.Context) error {
	if d.cfg.Kind() != "sqlite" {
		return nil
	}
	return checkSQLiteFile(d.cfg.SQLiteFile(d.paths))
}

// Start implements component.Component. It checks what Init checks too, so
// that it is safe without a Runner.
func (d *Datastore) Start(ctx context.Context, fail func(error)) error {
	if d.cfg.Etcd != nil {
		return d.startEmbedded(ctx, fail)
	}
	if d.cfg.Kind() == "etcd" {
		return d.startEtcd(ctx)
	}
	if err := d.Init(ctx); err != nil {
		return err
	}
	kineEndpoint := d.cfg.Endpoint
	if d.cfg.Kind() == "sqlite" {
		// The data dir's database, or the one a sqlite:// endpoint names.
		file := d.cfg.SQLiteFile(d.paths)
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return fmt.Errorf("cannot create the database directory: %w; check that --data-dir %s is writable", err, d.paths.DataDir)
		}
		if rest, ok := strings.CutPrefix(kineEndpoint, "sqlite://"); ok {
			kineEndpoint = sqliteEndpoint(rest)
		} else {
			kineEndpoint = sqliteEndpoint(file)
		}
	}
	etcd, cancel, wg, err := d.listen(ctx, kineEndpoint, d.paths.KineSocket)
	if err != nil {
		return err
	}
	if d.Shared() {
		kctx, stopKeeping := context.WithCancel(context.Background())
		keepCurrent(kctx, wg, etcd.Endpoints, d.paths.KineSocket)
		stopKine := cancel
		cancel = func() { stopKeeping(); stopKine() }
	}
	d.mu.Lock()
	d.cancel, d.wg = cancel, wg
	d.endpoint = Endpoint{Servers: etcd.Endpoints, LeaderElect: etcd.LeaderElect}
	d.mu.Unlock()
	return nil
}

// listen starts kine for kineEndpoint on a unix socket, once the database
// answers. Stopping it is cancel, then waiting for wg.
func (d *Datastore) listen(ctx context.Context, kineEndpoint, socket string) (endpoint.ETCDConfig, context.CancelFunc, *sync.WaitGroup, error) {
	var none endpoint.ETCDConfig
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return none, nil, nil, fmt.Errorf("cannot create %s: %w; check that --data-dir is writable", filepath.Dir(socket), err)
	}
	if err := d.checkSQL(ctx); err != nil {
		return none, nil, nil, err
	}
	// kine's own retry loop for unreachable databases lasts minutes; it stops
	// with this context, which we cancel when ReachTimeout runs out.
	kctx, cancel := context.WithCancel(context.Background())
	wg := &sync.WaitGroup{}
	type result struct {
		etcd endpoint.ETCDConfig
		err  error
	}
	done := make(chan result, 1)
	go func() {
		etcd, err := endpoint.Listen(kctx, endpoint.Config{
			Listener:         "unix://" + socket,
			Endpoint:         kineEndpoint,
			WaitGroup:        wg,
			BackendTLSConfig: kinetls.Config{CAFile: d.cfg.CAFile, CertFile: d.cfg.CertFile, KeyFile: d.cfg.KeyFile},
			// kine's own command-line defaults; the library has none.
			ConnectionPoolConfig: generic.ConnectionPoolConfig{MaxIdle: 20, MaxIdleTime: 2 * time.Minute},
			PollInterval:         time.Second,
			NotifyInterval:       5 * time.Second,
			EmulatedETCDVersion:  "3.6.11",
			// kine compacts only when the API server asks, every
			// --datastore-compact-interval, to the revision it saw one
			// interval before (etcd's behaviour): the API server then
			// knows what is compacted and drops its cached pages of it, so
			// a continue token that old expires. kine's own schedule,
			// which keeps 1,000 revisions, never expires one in a quiet
			// cluster, and the API server would not learn of it.
			CompactInterval:   0,
			CompactTimeout:    5 * time.Second,
			CompactMinRetain:  0,
			CompactBatchSize:  1000,
			PollBatchSize:     500,
			MetricsRegisterer: d.Metrics,
		})
		done <- result{etcd, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			cancel()
			return none, nil, nil, d.explain(r.err)
		}
		return r.etcd, cancel, wg, nil
	case <-time.After(d.ReachTimeout):
		cancel()
		return none, nil, nil, fmt.Errorf("cannot reach the %s datastore at %s within %s; check --datastore-endpoint and that the database is running", d.cfg.Kind(), redact(d.cfg.Endpoint), d.ReachTimeout)
	case <-ctx.Done():
		cancel()
		return none, nil, nil, ctx.Err()
	}
}

func (d *Datastore) startEtcd(ctx context.Context) error {
	servers := strings.Split(d.cfg.Endpoint, ",")
	tlsCfg, err := kinetls.Config{CAFile: d.cfg.CAFile, CertFile: d.cfg.CertFile, KeyFile: d.cfg.KeyFile}.ClientConfig()
	if err != nil {
		return fmt.Errorf("cannot load the etcd TLS files: %w; check --datastore-cafile, --datastore-certfile and --datastore-keyfile", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: servers, DialTimeout: d.ReachTimeout, TLS: tlsCfg, Logger: nopZap()})
	if err != nil {
		return fmt.Errorf("cannot reach etcd at %s: %w; check --datastore-endpoint", redact(d.cfg.Endpoint), err)
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, d.ReachTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, "/kubox-health-check"); err != nil {
		return fmt.Errorf("cannot reach etcd at %s: %v; check --datastore-endpoint and that etcd is running", redact(d.cfg.Endpoint), err)
	}
	d.mu.Lock()
	d.endpoint = Endpoint{Servers: servers, CAFile: d.cfg.CAFile, CertFile: d.cfg.CertFile, KeyFile: d.cfg.KeyFile, LeaderElect: true}
	d.mu.Unlock()
	return nil
}

// Ready implements component.Component: Start returns only once kine
// accepts connections.
func (d *Datastore) Ready(ctx context.Context) error { return nil }

// Stop implements component.Component.
func (d *Datastore) Stop(ctx context.Context) error {
	d.mu.Lock()
	cancel, wg, e := d.cancel, d.wg, d.embedded
	d.stopping = true
	d.mu.Unlock()
	if e != nil {
		e.Close()
		return nil
	}
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("kine did not stop in time")
	}
}

func (d *Datastore) explain(err error) error {
	msg := err.Error()
	// Only SQLite has a file kubox opens itself: other databases' own
	// errors point at the endpoint.
	if d.cfg.Kind() == "sqlite" {
		file := d.cfg.SQLiteFile(d.paths)
		if strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") || strings.Contains(msg, "corrupt") {
			return corruptError(file, msg)
		}
		if strings.Contains(msg, "readonly") || strings.Contains(msg, "permission denied") || strings.Contains(msg, "unable to open") {
			return fmt.Errorf("cannot open the database in %s: %s; check that --data-dir is writable", filepath.Dir(file), msg)
		}
	}
	where := ""
	if d.cfg.Endpoint != "" {
		where = " at " + redact(d.cfg.Endpoint)
	}
	return fmt.Errorf("cannot start the %s datastore%s: %s; check --datastore-endpoint", d.cfg.Kind(), where, d.scrub(err))
}

func corruptError(file, detail string) error {
	return fmt.Errorf("the SQLite database %s is corrupt (%s): restore a backup or move it aside to start a new cluster; kubox left it untouched", file, detail)
}

// checkSQLiteFile refuses a file that is not an SQLite database before kine
// opens it, so that nothing writes to it.
func checkSQLiteFile(file string) error {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the database %s: %w; check its permissions", file, err)
	}
	defer f.Close()
	head := make([]byte, 16)
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // an empty file is a new database
	}
	if n < 16 || !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return corruptError(file, "no SQLite header")
	}
	return nil
}

// redact masks the passwords in a datastore URL list
// (user:***@host). It works on the text rather than through net/url, which
// refuses MySQL's tcp(host:port) form.
func redact(endpoints string) string {
	var out []string
	for _, e := range strings.Split(endpoints, ",") {
		if scheme, rest, at, ok := userinfo(e); ok {
			user, _, hasPW := strings.Cut(rest[:at], ":")
			if hasPW {
				user += ":***"
			}
			e = scheme + "://" + user + rest[at:]
		}
		out = append(out, e)
	}
	return strings.Join(out, ",")
}

// userinfo splits a URL at its userinfo: what follows the scheme, and the
// index in it of the '@' that ends the userinfo.
func userinfo(e string) (scheme, rest string, at int, ok bool) {
	scheme, rest, found := strings.Cut(e, "://")
	if !found {
		return "", "", 0, false
	}
	// The userinfo ends at the last '@' before the path.
	auth := rest
	if i := strings.IndexByte(auth, '/'); i >= 0 {
		auth = auth[:i]
	}
	at = strings.LastIndexByte(auth, '@')
	return scheme, rest, at, at >= 0
}

// endpointPassword is the password in a single datastore URL, "" for none.
func endpointPassword(e string) string {
	_, rest, at, ok := userinfo(e)
	if !ok {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

// nopZap silences the etcd client's own logger; kubox reports its errors.
func nopZap() *zap.Logger { return zap.NewNop() }

func (d *Datastore) logf(format string, args ...any) {
	if d.Log != nil {
		d.Log.Infof(format, args...)
	}
}
