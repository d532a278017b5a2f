// Command images makes the container images the Kubernetes e2e suite runs,
// named exactly as the suite names them, so that its pods (pull policy
// IfNotPresent) find them in containerd and never pull. It writes them all
// into one OCI archive for a node's agent/images directory; the Debian root
// most of them share is stored once.
//
// The suite's own list of the images it uses (`e2e.test --list-images`) is
// the input: an image kubox has no recipe for is written to -missing with
// the reason, so that the specs which need it are reported, not guessed.
//
//	images -list images.txt -layers DIR -out e2e-images.tar -missing missing.txt
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubox-io/kubox/pkg/images/oci"
)

// Layer files the build script makes in -layers (uncompressed tars).
const (
	debianLayer   = "debian.tar"           // Debian root with the tools the specs call
	busyboxLayer  = "busybox.tar"          // busybox built from source, every applet linked to it
	agnhostLayer  = "agnhost.tar"          // /agnhost, /agnhost-2, porter's key pair, /uploads
	pauseLayer    = "pause.tar"            // /pause, kubox's static pause
	kittenLayer   = "kitten.tar"           // test-webserver's files of the kitten image
	nautilusLayer = "nautilus.tar"         // and of the nautilus image
	nnpLayer      = "nnp.tar"              // /usr/local/bin/nnp, setuid root
	sampleLayer   = "sample-apiserver.tar" // /sample-apiserver, k8s.io/sample-apiserver
	etcdLayer     = "etcd.tar"             // /usr/local/bin/etcd, the etcd kubox embeds
)

// recipe is how one repository's images are made.
type recipe struct {
	layers []string
	config oci.Config
}

// e2eRepo is where the suite's own images live.
const e2eRepo = "registry.k8s.io/e2e-test-images/"

// recipes maps a repository (the reference without its tag) to its image.
// Every tag the suite asks for gets the same content: the specs compare
// images by name, not by what is inside.
var recipes = map[string]recipe{
	e2eRepo + "agnhost": {
		layers: []string{debianLayer, agnhostLayer},
		config: oci.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}},
	},
	e2eRepo + "busybox": {layers: []string{debianLayer, busyboxLayer}, config: oci.Config{Cmd: []string{"sh"}}},
	e2eRepo + "nginx": {
		layers: []string{debianLayer},
		config: oci.Config{Cmd: []string{"nginx", "-g", "daemon off;"}},
	},
	e2eRepo + "glibc-dns-testing": {layers: []string{debianLayer}, config: oci.Config{Cmd: []string{"sh"}}},
	e2eRepo + "nonroot": { // upstream's is busybox's image run as another user
		layers: []string{debianLayer, busyboxLayer},
		config: oci.Config{Cmd: []string{"sh"}, User: "1234"},
	},
	e2eRepo + "nonewprivs": {
		layers: []string{debianLayer, nnpLayer},
		config: oci.Config{Cmd: []string{"nnp"}},
	},
	e2eRepo + "kitten": {
		layers: []string{debianLayer, agnhostLayer, kittenLayer},
		config: oci.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"test-webserver"}},
	},
	e2eRepo + "nautilus": {
		layers: []string{debianLayer, agnhostLayer, nautilusLayer},
		config: oci.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"test-webserver"}},
	},
	// The aggregator spec's API server and its etcd, which it runs as
	// /usr/local/bin/etcd.
	e2eRepo + "sample-apiserver": {
		layers: []string{debianLayer, sampleLayer},
		config: oci.Config{Entrypoint: []string{"/sample-apiserver"}},
	},
	"registry.k8s.io/etcd":  {layers: []string{debianLayer, etcdLayer}, config: oci.Config{Cmd: []string{"/usr/local/bin/etcd"}}},
	"registry.k8s.io/pause": {layers: []string{pauseLayer}, config: oci.Config{Entrypoint: []string{"/pause"}}},
}

// env is the PATH every image runs with (the container runtime adds none).
var env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	list := fs.String("list", "", "file with the suite's image references, one a line (e2e.test --list-images)")
	layers := fs.String("layers", "", "directory holding the layer tars the build script made")
	out := fs.String("out", "", "OCI archive to write")
	missing := fs.String("missing", "", "file to write the references not built, each with the reason")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list == "" || *layers == "" || *out == "" || *missing == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-list, -layers, -out and -missing are required, and nothing else")
	}
	refs, err := readList(*list)
	if err != nil {
		return err
	}
	images, skipped := plan(refs)
	cache := map[string][]byte{}
	for i, img := range images {
		for _, name := range recipes[repository(img.Ref)].layers {
			if cache[name] == nil {
				if cache[name], err = os.ReadFile(filepath.Join(*layers, name)); err != nil {
					return err
				}
			}
			images[i].Layers = append(images[i].Layers, cache[name])
		}
	}
	f, err := os.Create(*out + ".tmp")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// Made and imported on this machine: compressing would cost minutes
	// for nothing.
	if _, err := oci.WriteImages(w, images, oci.Uncompressed()); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(*out+".tmp", *out); err != nil {
		return err
	}
	var report strings.Builder
	for _, s := range skipped {
		fmt.Fprintf(&report, "%s\t%s\n", s, skipReason(s))
	}
	for _, img := range images {
		fmt.Printf("built %s\n", img.Ref)
	}
	fmt.Printf("%d images in %s, %d not built (see %s)\n", len(images), *out, len(skipped), *missing)
	return os.WriteFile(*missing, []byte(report.String()), 0o644)
}

// readList reads image references, one a line, skipping blank lines.
func readList(name string) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			refs = append(refs, line)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s lists no image", name)
	}
	return refs, nil
}

// plan splits refs into the images kubox makes (sorted, layers still to
// be filled in) and the references it does not.
func plan(refs []string) (images []oci.Image, skipped []string) {
	seen := map[string]bool{}
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		r, ok := recipes[repository(ref)]
		if !ok {
			skipped = append(skipped, ref)
			continue
		}
		cfg := r.config
		cfg.Env = env
		images = append(images, oci.Image{Ref: ref, Config: cfg})
	}
	sort.Slice(images, func(i, j int) bool { return images[i].Ref < images[j].Ref })
	sort.Strings(skipped)
	return images, skipped
}

// repository is ref without its tag.
func repository(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

// skipReason says why a reference has no image.
func skipReason(ref string) string {
	switch {
	case strings.HasPrefix(ref, "invalid.registry.k8s.io/"):
		return "a registry that does not exist, on purpose: the spec expects the pull to fail"
	case strings.HasPrefix(ref, "gcr.io/k8s-authenticated-test/"):
		return "a private registry the spec pulls from with credentials: needs the network"
	default:
		return "no offline recipe in tests/conformance/images yet"
	}
}
