// Package images makes the system images a kubox node runs without ever
// pulling: they are built at start from executables inside the kubox binary
// and imported into containerd under kubox.local/… names.
package images

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/kubox-io/kubox/pkg/images/oci"
)

// CoreDNSVersion is the CoreDNS release the bundled coredns is built from: the
// version of github.com/coredns/coredns in scripts/payload/go.mod (a test
// keeps the two equal). CoreDNS prefers the version recorded in the
// executable itself and falls back to this one.
const CoreDNSVersion = "1.15.0"

// coreDNSModule is the Go module the bundled coredns is built from.
const coreDNSModule = "github.com/coredns/coredns"

// Image is a system image ready to import. Its archive is written as it
// is read, never held whole: CoreDNS's would be a copy of a 55 MB
// executable, and two more while it was built.
type Image struct {
	Ref   string
	write func(io.Writer) error
}

// Open returns the image's OCI image layout tar as a stream. Close it
// when done, read to the end or not.
func (i Image) Open() io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(i.write(pw)) }()
	return pr
}

// Pause builds the pod sandbox image from the bundled pause program. Its
// tag derives from the program's content, so a new kubox brings a new tag.
func Pause(binDir string) (Image, error) {
	bin, err := readBundled(binDir, "pause")
	if err != nil {
		return Image{}, err
	}
	return singleFile("kubox.local/pause:"+shortSum(bin), "/pause", bin, "65535:65535")
}

// CoreDNS builds the cluster DNS image from the bundled coredns executable,
// tagged <CoreDNS version>-<content hash> so that a new kubox brings a new
// tag. The image runs as root: serving port 53 needs NET_BIND_SERVICE, which
// the DNS Deployment grants (and confines) through its securityContext.
func CoreDNS(binDir string) (Image, error) {
	bin, err := readBundled(binDir, "coredns")
	if err != nil {
		return Image{}, err
	}
	sum := sha256.Sum256(bin)
	return singleFile(CoreDNSRef(hex.EncodeToString(sum[:])), "/coredns", bin, "")
}

// CoreDNSRef names the CoreDNS image for the executable whose sha256 (hex)
// is sum. The server, which may run no node, names it from the payload's
// manifest the same way, without extracting anything.
func CoreDNSRef(sum string) string {
	if len(sum) > 12 {
		sum = sum[:12]
	}
	return "kubox.local/coredns:" + CoreDNSVersion + "-" + sum
}

// readBundled reads the bundled executable name from binDir.
func readBundled(binDir, name string) ([]byte, error) {
	bin, err := os.ReadFile(filepath.Join(binDir, name))
	if err != nil {
		return nil, fmt.Errorf("reading the bundled %s program: %w", name, err)
	}
	return bin, nil
}

// shortSum is the first 12 hex digits of data's SHA-256.
func shortSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// coreDNSVersionOf is the CoreDNS version (without the leading v) recorded in
// the Go build information of the coredns executable bin, or CoreDNSVersion
// when bin carries none.
func coreDNSVersionOf(bin []byte) string {
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		return CoreDNSVersion
	}
	for _, m := range append([]*debug.Module{&info.Main}, info.Deps...) {
		if m.Path != coreDNSModule {
			continue
		}
		if m.Replace != nil {
			m = m.Replace
		}
		if v, ok := strings.CutPrefix(m.Version, "v"); ok && v != "" {
			return tagSafe(v)
		}
	}
	return CoreDNSVersion
}

// tagSafe replaces the characters an image tag may not hold (such as the +
// of a module version's build metadata) with "-".
func tagSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, s)
}

// singleFile builds an image of one executable at path that is also its
// entrypoint, run as user (the image default when empty).
func singleFile(ref, path string, bin []byte, user string) (Image, error) {
	write := func(w io.Writer) error {
		_, err := oci.Write(w, ref, []oci.File{{Path: path, Mode: 0o755, Data: bin}},
			oci.Config{Entrypoint: []string{path}, User: user}, oci.Uncompressed())
		return err
	}
	// kubox makes ref and the files itself: an error here is a bug, and
	// it surfaces in the import that reads the archive.
	return Image{Ref: ref, write: write}, nil
}
