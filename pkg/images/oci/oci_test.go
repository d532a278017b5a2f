package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

var testFiles = []File{
	{Path: "/pause", Mode: 0o755, Data: []byte("#!pause binary\x00\x01")},
	{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/:/pause\n")},
	{Path: "/etc/ssl/certs/ca.pem", Mode: 0o444, Data: []byte("-----BEGIN CERTIFICATE-----\n")},
	{Path: "/usr/bin/suid", Mode: 0o755 | os.ModeSetuid, Data: nil},
}

var testConfig = Config{
	Entrypoint: []string{"/pause"},
	Cmd:        []string{"-v"},
	Env:        []string{"PATH=/usr/bin"},
	WorkingDir: "/",
	User:       "65535:65535",
	Labels:     map[string]string{"io.kubox.image": "pause", "a": "b"},
}

// entry is one regular file or directory read back from a tar.
type entry struct {
	typ  byte
	mode int64
	uid  int
	gid  int
	data []byte
}

func readTar(t *testing.T, b []byte) (map[string]entry, []string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	m := map[string]entry{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar entry %s: %v", h.Name, err)
		}
		if _, dup := m[h.Name]; dup {
			t.Errorf("tar entry %s appears twice", h.Name)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("tar entry %s: mtime %v, want %v", h.Name, h.ModTime, epoch)
		}
		m[h.Name] = entry{typ: h.Typeflag, mode: h.Mode, uid: h.Uid, gid: h.Gid, data: data}
		order = append(order, h.Name)
	}
	return m, order
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob returns the blob d points at, after checking its name and size.
func blob(t *testing.T, files map[string]entry, d Descriptor) []byte {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("descriptor digest %q is not sha256", d.Digest)
	}
	e, ok := files["blobs/sha256/"+hexDigest]
	if !ok {
		t.Fatalf("blob %s missing from the archive", d.Digest)
	}
	if got := sha(e.data); got != d.Digest {
		t.Errorf("blob %s has digest %s", d.Digest, got)
	}
	if int64(len(e.data)) != d.Size {
		t.Errorf("blob %s: descriptor size %d, blob size %d", d.Digest, d.Size, len(e.data))
	}
	return e.data
}

func write(t *testing.T, ref string, files []File, cfg Config, opts ...Option) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	dgst, err := Write(&buf, ref, files, cfg, opts...)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes(), dgst
}

func TestWriteLayout(t *testing.T) {
	const ref = "kubox.local/pause:3.10-kubox1"
	archive, dgst := write(t, ref, testFiles, testConfig)
	files, _ := readTar(t, archive)

	// Every blob is named after its own digest.
	for name, e := range files {
		if h, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && h != "" {
			if got := sha(e.data); got != "sha256:"+h {
				t.Errorf("%s has digest %s", name, got)
			}
		}
	}

	layout, ok := files["oci-layout"]
	if !ok {
		t.Fatal("oci-layout missing")
	}
	var l Layout
	if err := json.Unmarshal(layout.data, &l); err != nil {
		t.Fatalf("oci-layout: %v", err)
	}
	if l.ImageLayoutVersion != "1.0.0" {
		t.Errorf("imageLayoutVersion = %q, want 1.0.0", l.ImageLayoutVersion)
	}

	idxFile, ok := files["index.json"]
	if !ok {
		t.Fatal("index.json missing")
	}
	var idx Index
	if err := json.Unmarshal(idxFile.data, &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != MediaTypeIndex {
		t.Errorf("index: schemaVersion %d mediaType %q", idx.SchemaVersion, idx.MediaType)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(idx.Manifests))
	}
	md := idx.Manifests[0]
	if md.Digest != dgst {
		t.Errorf("Write returned %s, index points at %s", dgst, md.Digest)
	}
	if md.MediaType != MediaTypeManifest {
		t.Errorf("manifest descriptor media type %q", md.MediaType)
	}
	if got := md.Annotations["org.opencontainers.image.ref.name"]; got != "3.10-kubox1" {
		t.Errorf("ref.name annotation = %q, want 3.10-kubox1", got)
	}
	if got := md.Annotations["io.containerd.image.name"]; got != ref {
		t.Errorf("io.containerd.image.name annotation = %q, want %s", got, ref)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("manifest platform = %+v, want linux/%s", md.Platform, runtime.GOARCH)
	}

	var man Manifest
	if err := json.Unmarshal(blob(t, files, md), &man); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if man.SchemaVersion != 2 || man.MediaType != MediaTypeManifest {
		t.Errorf("manifest: schemaVersion %d mediaType %q", man.SchemaVersion, man.MediaType)
	}
	if man.Config.MediaType != MediaTypeConfig {
		t.Errorf("config media type %q", man.Config.MediaType)
	}
	if len(man.Layers) != 1 || man.Layers[0].MediaType != MediaTypeLayerGz {
		t.Fatalf("layers = %+v, want one gzip layer", man.Layers)
	}

	var cfg ImageConfig
	if err := json.Unmarshal(blob(t, files, man.Config), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if cfg.Created != "1970-01-01T00:00:00Z" || len(cfg.History) != 1 || cfg.History[0].Created != cfg.Created {
		t.Errorf("created %q history %+v, want the fixed epoch in both", cfg.Created, cfg.History)
	}
	rc := cfg.Config
	if strings.Join(rc.Entrypoint, " ") != "/pause" || strings.Join(rc.Cmd, " ") != "-v" ||
		strings.Join(rc.Env, " ") != "PATH=/usr/bin" || rc.WorkingDir != "/" || rc.User != "65535:65535" ||
		rc.Labels["io.kubox.image"] != "pause" || rc.Labels["a"] != "b" {
		t.Errorf("runtime config = %+v, want %+v", rc, testConfig)
	}

	layerGz := blob(t, files, man.Layers[0])
	zr, err := gzip.NewReader(bytes.NewReader(layerGz))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header holds mtime %v name %q, want none", zr.ModTime, zr.Name)
	}
	layerTar, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip layer: %v", err)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != sha(layerTar) {
		t.Errorf("rootfs = %+v, want diff_id %s", cfg.RootFS, sha(layerTar))
	}

	entries, order := readTar(t, layerTar)
	wantOrder := []string{"etc/", "etc/passwd", "etc/ssl/", "etc/ssl/certs/", "etc/ssl/certs/ca.pem", "pause", "usr/", "usr/bin/", "usr/bin/suid"}
	if strings.Join(order, " ") != strings.Join(wantOrder, " ") {
		t.Errorf("layer entries\n got %v\nwant %v", order, wantOrder)
	}
	for name, e := range entries {
		if e.uid != 0 || e.gid != 0 {
			t.Errorf("%s owned by %d:%d, want 0:0", name, e.uid, e.gid)
		}
		if strings.HasSuffix(name, "/") && (e.typ != tar.TypeDir || e.mode != 0o755) {
			t.Errorf("%s: type %c mode %o, want directory 0755", name, e.typ, e.mode)
		}
	}
	wantMode := map[string]int64{"/pause": 0o755, "/etc/passwd": 0o644, "/etc/ssl/certs/ca.pem": 0o444, "/usr/bin/suid": 0o4755}
	for _, f := range testFiles {
		e, ok := entries[f.Path[1:]]
		if !ok {
			t.Errorf("%s missing from the layer", f.Path)
			continue
		}
		if e.typ != tar.TypeReg {
			t.Errorf("%s: type %c, want regular file", f.Path, e.typ)
		}
		if e.mode != wantMode[f.Path] {
			t.Errorf("%s: mode %o, want %o", f.Path, e.mode, wantMode[f.Path])
		}
		if !bytes.Equal(e.data, f.Data) {
			t.Errorf("%s: content %q, want %q", f.Path, e.data, f.Data)
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, da := write(t, "kubox.local/pause:1", testFiles, testConfig)
	// The same files in another order make the same image.
	shuffled := []File{testFiles[3], testFiles[1], testFiles[0], testFiles[2]}
	b, db := write(t, "kubox.local/pause:1", shuffled, testConfig)
	if !bytes.Equal(a, b) || da != db {
		t.Errorf("two writes of the same image differ (%s, %s)", da, db)
	}
	c, dc := write(t, "kubox.local/pause:2", testFiles, testConfig)
	if bytes.Equal(a, c) {
		t.Error("another ref gave the same archive")
	}
	if dc != da {
		t.Error("the ref changed the manifest digest; it should only change index.json")
	}
}

func TestWithArch(t *testing.T) {
	archive, _ := write(t, "kubox.local/pause:1", testFiles, testConfig, WithArch("riscv64"))
	files, _ := readTar(t, archive)
	var idx Index
	if err := json.Unmarshal(files["index.json"].data, &idx); err != nil {
		t.Fatal(err)
	}
	if p := idx.Manifests[0].Platform; p == nil || p.Architecture != "riscv64" {
		t.Errorf("index platform %+v, want riscv64", p)
	}
	var man Manifest
	if err := json.Unmarshal(blob(t, files, idx.Manifests[0]), &man); err != nil {
		t.Fatal(err)
	}
	var cfg ImageConfig
	if err := json.Unmarshal(blob(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "riscv64" {
		t.Errorf("config architecture %q, want riscv64", cfg.Architecture)
	}
}

func TestWriteRejects(t *testing.T) {
	ok := []File{{Path: "/a", Mode: 0o755, Data: []byte("x")}}
	for _, tc := range []struct {
		name  string
		ref   string
		files []File
	}{
		{"relative path", "k/x:1", []File{{Path: "a", Mode: 0o644}}},
		{"unclean path", "k/x:1", []File{{Path: "/a/../b", Mode: 0o644}}},
		{"trailing slash", "k/x:1", []File{{Path: "/a/", Mode: 0o644}}},
		{"root", "k/x:1", []File{{Path: "/", Mode: 0o755}}},
		{"duplicate", "k/x:1", []File{{Path: "/a", Mode: 0o644}, {Path: "/a", Mode: 0o644}}},
		{"file is a parent", "k/x:1", []File{{Path: "/a", Mode: 0o644}, {Path: "/a/b", Mode: 0o644}}},
		{"parent is a file", "k/x:1", []File{{Path: "/a/b", Mode: 0o644}, {Path: "/a", Mode: 0o644}}},
		{"directory mode", "k/x:1", []File{{Path: "/a", Mode: os.ModeDir | 0o755}}},
		{"symlink mode", "k/x:1", []File{{Path: "/a", Mode: os.ModeSymlink | 0o777}}},
		{"empty ref", "", ok},
		{"no tag", "kubox.local/pause", ok},
		{"port but no tag", "localhost:5000/pause", ok},
		{"digest", "kubox.local/pause@sha256:abcd", ok},
		{"empty tag", "kubox.local/pause:", ok},
		{"bad tag", "kubox.local/pause:-x", ok},
		{"uppercase repo", "kubox.local/Pause:1", ok},
		{"empty name", ":1", ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Write(io.Discard, tc.ref, tc.files, Config{}); err == nil {
				t.Errorf("Write(%q, %+v) succeeded, want an error", tc.ref, tc.files)
			}
		})
	}
	// Sanity: the accepted forms.
	for _, ref := range []string{"kubox.local/pause:3.10-kubox1", "localhost:5000/a/b:v1", "pause:latest", "Registry.Example/x:1"} {
		if _, err := Write(io.Discard, ref, ok, Config{}); err != nil {
			t.Errorf("Write(%q): %v", ref, err)
		}
	}
}

// TestWriteImages: two images over a shared root and a layer each of their
// own are named in one index, and the shared layer is stored once.
func TestWriteImages(t *testing.T) {
	base, err := Layer(testFiles)
	if err != nil {
		t.Fatal(err)
	}
	extraA, _ := Layer([]File{{Path: "/a.json", Mode: 0o644, Data: []byte(`{"a":1}`)}})
	extraB, _ := Layer([]File{{Path: "/b.json", Mode: 0o644, Data: []byte(`{"b":1}`)}})
	var buf bytes.Buffer
	digests, err := WriteImages(&buf, []Image{
		{Ref: "registry.example/a:1", Layers: [][]byte{base, extraA}, Config: Config{Cmd: []string{"a"}}},
		{Ref: "registry.example/b:2", Layers: [][]byte{base, extraB}, Config: Config{User: "1234"}},
	}, Uncompressed())
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, buf.Bytes())
	var idx Index
	if err := json.Unmarshal(files["index.json"].data, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || len(digests) != 2 {
		t.Fatalf("index has %d manifests, %d digests returned; want 2 and 2", len(idx.Manifests), len(digests))
	}
	baseBlobs := 0
	for name, e := range files {
		if strings.HasPrefix(name, "blobs/sha256/") && bytes.Equal(e.data, base) {
			baseBlobs++
		}
	}
	if baseBlobs != 1 {
		t.Errorf("the shared layer is stored %d times, want once", baseBlobs)
	}
	for i, want := range []string{"registry.example/a:1", "registry.example/b:2"} {
		d := idx.Manifests[i]
		if d.Digest != digests[i] || d.Annotations[AnnotationImageName] != want {
			t.Errorf("manifest %d: %s named %q, want %s named %q", i, d.Digest, d.Annotations[AnnotationImageName], digests[i], want)
		}
		var man Manifest
		if err := json.Unmarshal(blob(t, files, d), &man); err != nil {
			t.Fatal(err)
		}
		if len(man.Layers) != 2 || man.Layers[0].MediaType != MediaTypeLayer || !bytes.Equal(blob(t, files, man.Layers[0]), base) {
			t.Errorf("manifest %d: layers %+v, want the shared root first, uncompressed", i, man.Layers)
		}
	}
	if _, err := WriteImages(io.Discard, []Image{{Ref: "x/y:1"}}); err == nil {
		t.Error("an image without layers was written")
	}
}

// Write streams its layer; WriteImages stores layers it is given whole.
// Both must make the same archive, compressed or not.
func TestWriteStreamsTheSameLayer(t *testing.T) {
	layer, err := Layer(testFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]Option{nil, {Uncompressed()}} {
		var streamed, held bytes.Buffer
		d1, err := Write(&streamed, "kubox.local/pause:1", testFiles, testConfig, opts...)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := WriteImages(&held, []Image{{Ref: "kubox.local/pause:1", Layers: [][]byte{layer}, Config: testConfig}}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if d1 != d2[0] || !bytes.Equal(streamed.Bytes(), held.Bytes()) {
			t.Errorf("options %d: Write made %s (%d bytes), WriteImages %s (%d bytes)", len(opts), d1, streamed.Len(), d2[0], held.Len())
		}
	}
}
