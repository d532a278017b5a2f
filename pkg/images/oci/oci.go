// Package oci has one job: writing single-layer OCI image archives (an OCI
// image layout packed in a tar) from files held in memory, for kubox's
// system images and for the images tests build. The output is
// deterministic: the same input gives byte-identical archives, so an image
// keeps its digest from one build or start-up to the next.
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Media types and annotation keys written into the layout.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"

	// AnnotationRefName carries the tag, as the OCI image layout asks.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImageName carries the full reference; containerd's import
	// names the image after it.
	AnnotationImageName = "io.containerd.image.name"

	// LayoutVersion is the oci-layout file's imageLayoutVersion.
	LayoutVersion = "1.0.0"
)

// epoch is the modification time of every tar entry: fixed, so that the
// output does not depend on when it was made.
var epoch = time.Unix(0, 0).UTC()

// File is one regular file of the image.
type File struct {
	Path string      // absolute path inside the image, e.g. "/pause"
	Mode os.FileMode // permission bits (and setuid/setgid/sticky), e.g. 0o755
	Data []byte
}

// Config is the part of the image configuration a container runtime uses
// to start the image.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string // e.g. "65535:65535"
	Labels     map[string]string
}

// Option changes how Write builds the image.
type Option func(*options)

type options struct {
	arch         string
	uncompressed bool
}

// Uncompressed stores the layer as a plain tar. For images made and
// imported on the same machine this saves compressing tens of megabytes
// at every first start; for images carried elsewhere gzip is better.
func Uncompressed() Option {
	return func(o *options) { o.uncompressed = true }
}

// WithArch sets the image's architecture (GOARCH spelling, e.g. "arm64")
// instead of the running program's.
func WithArch(arch string) Option {
	return func(o *options) { o.arch = arch }
}

// Descriptor points at a blob (OCI content descriptor).
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform is an image's target platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is the layout's index.json.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// ImageConfig is the image configuration blob.
type ImageConfig struct {
	Created      string        `json:"created,omitempty"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       RuntimeConfig `json:"config"`
	RootFS       RootFS        `json:"rootfs"`
	History      []History     `json:"history,omitempty"`
}

// RuntimeConfig is the "config" member of ImageConfig.
type RuntimeConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// RootFS lists the uncompressed layers' digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History describes how a layer was made.
type History struct {
	Created   string `json:"created,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// Layout is the oci-layout file.
type Layout struct {
	ImageLayoutVersion string `json:"imageLayoutVersion"`
}

// Write writes an OCI image layout tar (oci-layout, index.json,
// blobs/sha256/…) holding one linux image named ref (for example
// "kubox.local/pause:3.10-kubox1"; a tag is required) with a single gzip
// layer made of files and their parent directories. index.json's manifest
// descriptor carries the tag as org.opencontainers.image.ref.name and the
// full ref as io.containerd.image.name, so that containerd's import names
// the image ref. The same input gives byte-identical output. Write returns
// the manifest digest ("sha256:…").
//
// The layer is never held in memory whole: it is tarred once to learn its
// digest and again as it is written, so an image of a large executable
// costs no copy of it.
func Write(w io.Writer, ref string, files []File, cfg Config, opts ...Option) (string, error) {
	entries, err := layerEntries(files)
	if err != nil {
		return "", err
	}
	l, err := newStreamedLayer(entries)
	if err != nil {
		return "", err
	}
	digests, err := writeImages(w, []image{{ref: ref, layers: []layerSource{l}, config: cfg}}, opts)
	if err != nil {
		return "", err
	}
	return digests[0], nil
}

// Image is one image of a layout written by WriteImages.
type Image struct {
	Ref    string   // name with tag
	Layers [][]byte // uncompressed layer tars, lowest first
	Config Config
}

// WriteImages writes one OCI image layout tar holding every image, each
// named and tagged as Write names its one. A layer that several images
// share is stored once, so images over a common root cost one copy of it.
// It returns the manifest digests in the order of images.
func WriteImages(w io.Writer, images []Image, opts ...Option) ([]string, error) {
	var imgs []image
	for _, img := range images {
		x := image{ref: img.Ref, config: img.Config}
		for _, l := range img.Layers {
			x.layers = append(x.layers, heldLayer(l))
		}
		imgs = append(imgs, x)
	}
	return writeImages(w, imgs, opts)
}

// image is an Image whose layers are held or streamed.
type image struct {
	ref    string
	layers []layerSource
	config Config
}

// layerSource is an uncompressed layer tar.
type layerSource interface {
	diffID() string
	size() int64
	writeTo(w io.Writer) error
}

// heldLayer is a layer tar in memory.
type heldLayer []byte

func (l heldLayer) diffID() string            { return digestOf(l) }
func (l heldLayer) size() int64               { return int64(len(l)) }
func (l heldLayer) writeTo(w io.Writer) error { _, err := w.Write(l); return err }

// streamedLayer is tarred from its entries each time it is written.
type streamedLayer struct {
	entries []layerEntry
	n       int64
	digest  string
}

func newStreamedLayer(entries []layerEntry) (*streamedLayer, error) {
	h := sha256.New()
	c := &countingWriter{w: h}
	if err := writeLayer(c, entries); err != nil {
		return nil, err
	}
	return &streamedLayer{entries: entries, n: c.n, digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

func (l *streamedLayer) diffID() string { return l.digest }
func (l *streamedLayer) size() int64    { return l.n }
func (l *streamedLayer) writeTo(w io.Writer) error {
	c := &countingWriter{w: w}
	if err := writeLayer(c, l.entries); err != nil {
		return err
	}
	if c.n != l.n {
		return fmt.Errorf("oci: layer changed while written (%d bytes, then %d)", l.n, c.n)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// storedBlob is one file of the layout's blobs/sha256.
type storedBlob struct {
	n     int64
	write func(io.Writer) error
}

func writeImages(w io.Writer, images []image, opts []Option) ([]string, error) {
	o := options{arch: runtime.GOARCH}
	for _, opt := range opts {
		opt(&o)
	}
	if o.arch == "" {
		return nil, errors.New("oci: empty architecture")
	}
	if len(images) == 0 {
		return nil, errors.New("oci: no image to write")
	}
	blobs := map[string]storedBlob{}
	putAs := func(d string, b storedBlob) Descriptor {
		blobs[strings.TrimPrefix(d, "sha256:")] = b
		return Descriptor{Digest: d, Size: b.n}
	}
	put := func(b []byte) Descriptor {
		return putAs(digestOf(b), storedBlob{n: int64(len(b)), write: func(w io.Writer) error { _, err := w.Write(b); return err }})
	}
	// Compressing is the costly part: a layer shared by images is
	// compressed once.
	packed := map[string]Descriptor{}
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeIndex}
	var digests []string
	for _, img := range images {
		tag, err := tagOf(img.ref)
		if err != nil {
			return nil, err
		}
		if len(img.layers) == 0 {
			return nil, fmt.Errorf("oci: image %s has no layer", img.ref)
		}
		// The creation time is the fixed epoch too: some tools (umoci's
		// stat) fail on a history entry without one.
		created := epoch.Format(time.RFC3339)
		imgCfg := ImageConfig{
			Created:      created,
			Architecture: o.arch,
			OS:           "linux",
			Config: RuntimeConfig{
				User:       img.config.User,
				Env:        img.config.Env,
				Entrypoint: img.config.Entrypoint,
				Cmd:        img.config.Cmd,
				WorkingDir: img.config.WorkingDir,
				Labels:     img.config.Labels,
			},
			RootFS: RootFS{Type: "layers"},
		}
		man := Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest}
		for _, l := range img.layers {
			diffID := l.diffID()
			imgCfg.RootFS.DiffIDs = append(imgCfg.RootFS.DiffIDs, diffID)
			imgCfg.History = append(imgCfg.History, History{Created: created, CreatedBy: "kubox"})
			d, ok := packed[diffID]
			if !ok {
				if o.uncompressed {
					// Stored as it is: its digest is its diff ID.
					d = putAs(diffID, storedBlob{n: l.size(), write: l.writeTo})
					d.MediaType = MediaTypeLayer
				} else {
					stored, err := gzipLayer(l)
					if err != nil {
						return nil, err
					}
					d = put(stored)
					d.MediaType = MediaTypeLayerGz
				}
				packed[diffID] = d
			}
			man.Layers = append(man.Layers, d)
		}
		cfgBlob, err := json.Marshal(imgCfg)
		if err != nil {
			return nil, fmt.Errorf("oci: image config: %w", err)
		}
		man.Config = put(cfgBlob)
		man.Config.MediaType = MediaTypeConfig
		manBlob, err := json.Marshal(man)
		if err != nil {
			return nil, fmt.Errorf("oci: manifest: %w", err)
		}
		manDesc := put(manBlob)
		manDesc.MediaType = MediaTypeManifest
		manDesc.Platform = &Platform{Architecture: o.arch, OS: "linux"}
		manDesc.Annotations = map[string]string{AnnotationRefName: tag, AnnotationImageName: img.ref}
		idx.Manifests = append(idx.Manifests, manDesc)
		digests = append(digests, manDesc.Digest)
	}
	idxBlob, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("oci: index: %w", err)
	}
	layoutBlob, err := json.Marshal(Layout{ImageLayoutVersion: LayoutVersion})
	if err != nil {
		return nil, fmt.Errorf("oci: oci-layout: %w", err)
	}

	names := make([]string, 0, len(blobs))
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(dirHeader(d)); err != nil {
			return nil, fmt.Errorf("oci: write archive: %w", err)
		}
	}
	for _, n := range names {
		b := blobs[n]
		if err := writeEntry(tw, "blobs/sha256/"+n, 0o444, b.n, b.write); err != nil {
			return nil, err
		}
	}
	if err := writeFile(tw, "index.json", 0o444, idxBlob); err != nil {
		return nil, err
	}
	if err := writeFile(tw, "oci-layout", 0o444, layoutBlob); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("oci: write archive: %w", err)
	}
	return digests, nil
}

// tagOf checks ref ("name:tag") and returns its tag.
func tagOf(ref string) (string, error) {
	if ref == "" {
		return "", errors.New("oci: empty image reference")
	}
	if strings.ContainsAny(ref, "@ \t\r\n") {
		return "", fmt.Errorf("oci: image reference %q: want name:tag without digest or spaces", ref)
	}
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i+1:], "/") {
		return "", fmt.Errorf("oci: image reference %q has no tag", ref)
	}
	name, tag := ref[:i], ref[i+1:]
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", fmt.Errorf("oci: image reference %q: bad name", ref)
	}
	if strings.ToLower(repoPath(name)) != repoPath(name) {
		return "", fmt.Errorf("oci: image reference %q: repository must be lowercase", ref)
	}
	if !validTag(tag) {
		return "", fmt.Errorf("oci: image reference %q: bad tag %q", ref, tag)
	}
	return tag, nil
}

// repoPath is name without a leading registry host (a first component
// holding a dot or a port, or "localhost").
func repoPath(name string) string {
	first, rest, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return rest
	}
	return name
}

// validTag matches [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for _, c := range tag {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// Layer builds an uncompressed layer tar: every file and each of its
// parent directories once, sorted by path, owned by 0:0, with fixed times.
func Layer(files []File) ([]byte, error) {
	entries, err := layerEntries(files)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeLayer(&buf, entries); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layerEntry is one file or directory of a layer.
type layerEntry struct {
	name string
	dir  bool
	mode os.FileMode
	data []byte
}

// layerEntries checks files and returns them with their parent
// directories, sorted by path.
func layerEntries(files []File) ([]layerEntry, error) {
	type entry struct {
		dir  bool
		mode os.FileMode
		data []byte
	}
	entries := map[string]entry{}
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if f.Mode&^(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			return nil, fmt.Errorf("oci: file %s: mode %v is not a regular file's", f.Path, f.Mode)
		}
		if e, ok := entries[p]; ok {
			if e.dir {
				return nil, fmt.Errorf("oci: file %s is also a parent directory", f.Path)
			}
			return nil, fmt.Errorf("oci: file %s given twice", f.Path)
		}
		entries[p] = entry{mode: f.Mode, data: f.Data}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if e, ok := entries[d]; ok {
				if !e.dir {
					return nil, fmt.Errorf("oci: file %s is also a parent directory", "/"+d)
				}
				break
			}
			entries[d] = entry{dir: true, mode: 0o755}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	// A parent's path is a prefix of its children's, so it sorts first.
	sort.Strings(names)
	out := make([]layerEntry, 0, len(names))
	for _, n := range names {
		e := entries[n]
		out = append(out, layerEntry{name: n, dir: e.dir, mode: e.mode, data: e.data})
	}
	return out, nil
}

// writeLayer writes the layer tar of entries to w.
func writeLayer(w io.Writer, entries []layerEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if e.dir {
			if err := tw.WriteHeader(dirHeader(e.name + "/")); err != nil {
				return fmt.Errorf("oci: layer: %w", err)
			}
			continue
		}
		if err := writeFile(tw, e.name, e.mode, e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("oci: layer: %w", err)
	}
	return nil
}

// cleanPath turns an absolute image path into the tar name (no leading
// slash), refusing paths that are not absolute, not clean or the root.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("oci: file path %q: want a clean absolute path below /", p)
	}
	return p[1:], nil
}

func dirHeader(name string) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeDir,
		Name:     name,
		Mode:     0o755,
		ModTime:  epoch,
	}
}

func writeFile(tw *tar.Writer, name string, mode os.FileMode, data []byte) error {
	return writeEntry(tw, name, mode, int64(len(data)), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeEntry writes a regular file of size bytes, which write produces.
func writeEntry(tw *tar.Writer, name string, mode os.FileMode, size int64, write func(io.Writer) error) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     tarMode(mode),
		Size:     size,
		ModTime:  epoch,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("oci: %s: %w", name, err)
	}
	if err := write(tw); err != nil {
		return fmt.Errorf("oci: %s: %w", name, err)
	}
	return nil
}

// tarMode converts permission and special bits to the tar header's mode.
func tarMode(m os.FileMode) int64 {
	v := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// gzipLayer compresses l with a header that holds no name and no time.
func gzipLayer(l layerSource) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := l.writeTo(zw); err != nil {
		return nil, fmt.Errorf("oci: compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("oci: compress layer: %w", err)
	}
	return buf.Bytes(), nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
