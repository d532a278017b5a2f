// Command registry serves, for `make conformance`, the suite's images from
// the archive build.sh makes, under the names the suite pulls, so that the
// specs whose pull policy is Always pull them with no network: each node's
// registries.yaml makes this registry its mirror of the images' registry.
// It stores them under -root and ends on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"

	"github.com/kubox-io/kubox/tests/ocipush"
)

func main() {
	archive := flag.String("archive", "build/conformance/e2e-images.tar", "OCI layout archive of the images")
	listen := flag.String("listen", "127.0.0.1:5000", "address to serve on (plain HTTP)")
	root := flag.String("root", "", "directory the registry stores the images in; it must be empty or missing")
	host := flag.String("registry", "registry.k8s.io", "the registry whose images it serves: an image named <registry>/<repo>:<tag> is served as <repo>:<tag>")
	flag.Parse()
	if err := run(*archive, *listen, *root, *host); err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}

func run(archive, listen, root, host string) error {
	if root == "" {
		return errors.New("-root is needed")
	}
	a, err := ocipush.Read(archive)
	if err != nil {
		return err
	}
	cfg := &configuration.Configuration{Storage: configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": root}}}
	cfg.HTTP.Secret = "kubox-conformance"
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handlers.NewApp(context.Background(), cfg), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	reg := &ocipush.Registry{Base: "http://" + ln.Addr().String(), Client: http.DefaultClient}
	n := 0
	for _, img := range a.Images {
		repo, tag, ok := splitName(img.Name, host)
		if !ok {
			continue
		}
		if err := reg.Push(a, img, repo, tag); err != nil {
			return fmt.Errorf("pushing %s: %w", img.Name, err)
		}
		n++
	}
	// A signal ends it at once until here; from here on, the server stops
	// gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// run.sh waits for this line.
	log.Printf("serving %d images of %s on %s", n, host, ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// splitName splits host/repo:tag into repo and tag; ok is false for an
// image of another registry or with no tag.
func splitName(name, host string) (repo, tag string, ok bool) {
	rest, found := strings.CutPrefix(name, host+"/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 || strings.Contains(rest[i:], "/") {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}
