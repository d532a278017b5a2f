package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The datastore alone: conc clients create n keys of 1 KB straight on the
// datastore's etcd API, each with the condition the API server puts on a
// create (the key has no revision yet), while the node runs but is idle.
// Beside the creates through the API server, it tells the datastore's own
// pace from the API server's on the same cores.

// datastoreLoadCmd is the bench's own subcommand that makes the load: run
// inside the node's network namespace, where the datastore listens.
const datastoreLoadCmd = "datastore-load"

// datastorePrefix keeps the bench's keys apart from the API server's
// (/registry/…), which never reads them.
const datastorePrefix = "/kubox-bench/datastore/"

// datastoreEndpoint is where a kubox target's datastore answers, with the
// client credentials it asks for (none for kine's unix socket).
func (k *kuboxTarget) datastoreEndpoint() (endpoint, ca, cert, key string) {
	if k.etcd != nil {
		return k.etcd.URL, k.etcd.CA, k.etcd.Cert, k.etcd.Key
	}
	return "unix://" + filepath.Join(k.dataDir(), "server", "kine.sock"), "", "", ""
}

// measureDatastore runs the load against k's datastore from inside the
// node's network namespace.
func measureDatastore(ctx context.Context, k *kuboxTarget, n, conc int) (apiOp, error) {
	self, err := os.Executable()
	if err != nil {
		return apiOp{}, err
	}
	ep, ca, cert, key := k.datastoreEndpoint()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+netnsName, self, datastoreLoadCmd,
		"-endpoint", ep, "-ca", ca, "-cert", cert, "-key", key, "-n", fmt.Sprint(n), "-c", fmt.Sprint(conc),
		"-prefix", fmt.Sprintf("%s%d/", datastorePrefix, time.Now().UnixNano()))
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return apiOp{}, fmt.Errorf("%s: %v: %s", datastoreLoadCmd, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return apiOp{}, err
	}
	var op apiOp
	if err := json.Unmarshal(out, &op); err != nil {
		return apiOp{}, fmt.Errorf("%s printed %q: %v", datastoreLoadCmd, out, err)
	}
	return op, nil
}

// datastoreLoadMain is the subcommand: it prints the creates' apiOp as JSON.
func datastoreLoadMain(args []string) int {
	fs := flag.NewFlagSet(datastoreLoadCmd, flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "the datastore's etcd API")
	ca := fs.String("ca", "", "CA of the datastore's serving certificate")
	cert := fs.String("cert", "", "client certificate")
	key := fs.String("key", "", "client key")
	n := fs.Int("n", 5000, "keys to create")
	conc := fs.Int("c", 16, "concurrent clients")
	prefix := fs.String("prefix", datastorePrefix, "key prefix")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	op, err := datastoreLoad(*endpoint, *ca, *cert, *key, *prefix, *n, *conc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", datastoreLoadCmd, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(op); err != nil {
		return 1
	}
	return 0
}

func datastoreLoad(endpoint, ca, cert, key, prefix string, n, conc int) (apiOp, error) {
	cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return apiOp{}, err
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return apiOp{}, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return apiOp{}, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	value := strings.Repeat("v", 1024)
	lat, wall, err := parallel(ctx, n, conc, func(i int) error {
		k := fmt.Sprintf("%s%06d", prefix, i)
		r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", 0)).Then(clientv3.OpPut(k, value)).Commit()
		if err == nil && !r.Succeeded {
			err = fmt.Errorf("create of %s refused: the key exists", k)
		}
		return err
	})
	if err != nil {
		return apiOp{}, err
	}
	return opOf(lat, wall), nil
}
