package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kubox-io/kubox/pkg/images/oci"
)

func TestSystemImages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(string) (Image, error)
		ref   *regexp.Regexp
		path  string
		user  string
	}{
		{"pause", Pause, regexp.MustCompile(`^kubox\.local/pause:([0-9a-f]{12})$`), "/pause", "65535:65535"},
		{"coredns", CoreDNS, regexp.MustCompile(`^kubox\.local/coredns:` + regexp.QuoteMeta(CoreDNSVersion) + `-([0-9a-f]{12})$`), "/coredns", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := tc.build(dir); err == nil {
				t.Fatalf("%s without the %s program: no error", tc.name, tc.name)
			}

			first := []byte("#!fake " + tc.name + " 1\n")
			img := buildFrom(t, tc.build, dir, tc.name, first)
			m := tc.ref.FindStringSubmatch(img.Ref)
			if m == nil {
				t.Fatalf("ref %q does not match %s", img.Ref, tc.ref)
			}
			if sum := sha256.Sum256(first); m[1] != hex.EncodeToString(sum[:])[:12] {
				t.Errorf("ref %q: tag hash is not the start of the program's sha256", img.Ref)
			}

			cfg, files := readArchive(t, archiveOf(t, img))
			if !slices.Equal(cfg.Config.Entrypoint, []string{tc.path}) {
				t.Errorf("entrypoint %q, want [%s]", cfg.Config.Entrypoint, tc.path)
			}
			if cfg.Config.User != tc.user {
				t.Errorf("user %q, want %q", cfg.Config.User, tc.user)
			}
			f, ok := files[strings.TrimPrefix(tc.path, "/")]
			if !ok {
				t.Fatalf("image holds no %s; files: %v", tc.path, files)
			}
			if f.mode != 0o755 || !bytes.Equal(f.data, first) {
				t.Errorf("%s: mode %o, data %q; want 755, %q", tc.path, f.mode, f.data, first)
			}

			if again := buildFrom(t, tc.build, dir, tc.name, first); again.Ref != img.Ref || !bytes.Equal(archiveOf(t, again), archiveOf(t, img)) {
				t.Errorf("the same program gave another image (%q, then %q)", img.Ref, again.Ref)
			}
			changed := buildFrom(t, tc.build, dir, tc.name, []byte("#!fake "+tc.name+" 2\n"))
			if !tc.ref.MatchString(changed.Ref) {
				t.Fatalf("ref %q does not match %s", changed.Ref, tc.ref)
			}
			if changed.Ref == img.Ref {
				t.Errorf("a changed program kept the tag %q", img.Ref)
			}
		})
	}
}

// TestCoreDNSVersionMatchesPayload keeps CoreDNSVersion equal to the version
// the payload's coredns is built from.
func TestCoreDNSVersionMatchesPayload(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("..", "..", "scripts", "payload", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var found string
	for line := range strings.Lines(string(gomod)) {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require"))
		if len(f) >= 2 && f[0] == coreDNSModule {
			found = strings.TrimPrefix(f[1], "v")
		}
	}
	if found == "" {
		t.Fatalf("scripts/payload/go.mod does not require %s", coreDNSModule)
	}
	if found != CoreDNSVersion {
		t.Errorf("scripts/payload/go.mod has %s %s, CoreDNSVersion is %s", coreDNSModule, found, CoreDNSVersion)
	}
}

// TestCoreDNSFromPayload builds the image from a real payload's coredns when
// KUBOX_PAYLOAD_BIN names its bin directory (as scripts/build-payload.sh
// OUTDIR leaves it in OUTDIR/bin): the version in the tag must then come from
// the executable's build information and agree with CoreDNSVersion.
func TestCoreDNSFromPayload(t *testing.T) {
	dir := os.Getenv("KUBOX_PAYLOAD_BIN")
	if dir == "" {
		t.Skip("KUBOX_PAYLOAD_BIN is not set")
	}
	bin, err := os.ReadFile(filepath.Join(dir, "coredns"))
	if err != nil {
		t.Fatal(err)
	}
	if got := coreDNSVersionOf(bin); got != CoreDNSVersion {
		t.Errorf("the payload's coredns is CoreDNS %s, CoreDNSVersion is %s", got, CoreDNSVersion)
	}
	img, err := CoreDNS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kubox.local/coredns:" + CoreDNSVersion + "-" + shortSum(bin); img.Ref != want {
		t.Errorf("ref %q, want %q", img.Ref, want)
	}
	t.Logf("%s: %d bytes", img.Ref, len(archiveOf(t, img)))
}

func TestTagSafe(t *testing.T) {
	for in, want := range map[string]string{
		"1.15.0":                               "1.15.0",
		"1.15.1-0.20261001120000-0123456789ab": "1.15.1-0.20261001120000-0123456789ab",
		"2.0.0+incompatible":                   "2.0.0-incompatible",
	} {
		if got := tagSafe(in); got != want {
			t.Errorf("tagSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// buildFrom writes program as dir/name and builds the image from dir.
func buildFrom(t *testing.T, build func(string) (Image, error), dir, name string, program []byte) Image {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), program, 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := build(dir)
	if err != nil {
		t.Fatalf("building the %s image: %v", name, err)
	}
	return img
}

type layerFile struct {
	mode int64
	data []byte
}

// archiveOf is img's archive, read through Open as an import reads it.
func archiveOf(t *testing.T, img Image) []byte {
	t.Helper()
	r := img.Open()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", img.Ref, err)
	}
	return b
}

// readArchive returns the image configuration and the regular files of the
// single image in an OCI layout tar.
func readArchive(t *testing.T, archive []byte) (oci.ImageConfig, map[string]layerFile) {
	t.Helper()
	blobs := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		blobs[h.Name] = b
	}
	blob := func(d oci.Descriptor) []byte {
		b, ok := blobs["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("archive lacks blob %s", d.Digest)
		}
		return b
	}

	var index oci.Index
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(index.Manifests))
	}
	var manifest oci.Manifest
	if err := json.Unmarshal(blob(index.Manifests[0]), &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var cfg oci.ImageConfig
	if err := json.Unmarshal(blob(manifest.Config), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}

	files := map[string]layerFile{}
	for _, l := range manifest.Layers {
		var lrd io.Reader = bytes.NewReader(blob(l))
		if l.MediaType == oci.MediaTypeLayerGz {
			zr, err := gzip.NewReader(lrd)
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			lrd = zr
		}
		lr := tar.NewReader(lrd)
		for {
			h, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			b, err := io.ReadAll(lr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "/")] = layerFile{mode: h.Mode, data: b}
		}
	}
	return cfg, files
}
