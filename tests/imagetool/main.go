// Command imagetool packs a static binary into a single-layer image archive
// for kubox's tests: an OCI image layout tar made by pkg/images/oci, or a
// docker-archive (manifest.json, config, layer.tar) converted from it, since
// kubox must import both formats.
//
//	go run ./tests/imagetool -bin PATH -ref kubox.test/echo:v1 -entrypoint /echo -out echo.tar [-format oci|docker]
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/images/oci"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "imagetool: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagetool", flag.ContinueOnError)
	bin := fs.String("bin", "", "static binary to pack (required)")
	ref := fs.String("ref", "", "image name with tag, e.g. kubox.test/echo:v1 (required)")
	out := fs.String("out", "", "archive to write (required)")
	inImage := fs.String("path", "", "path of the binary inside the image (default /<basename of -bin>)")
	entrypoint := fs.String("entrypoint", "", "entrypoint, space separated (default: the binary's path in the image)")
	cmd := fs.String("cmd", "", "default arguments, space separated")
	user := fs.String("user", "", "user[:group] the image runs as")
	arch := fs.String("arch", runtime.GOARCH, "image architecture")
	format := fs.String("format", "oci", "archive format: oci or docker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *ref == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-bin, -ref and -out are required, and nothing else")
	}
	if *format != "oci" && *format != "docker" {
		return fmt.Errorf("-format %q: want oci or docker", *format)
	}
	data, err := os.ReadFile(*bin)
	if err != nil {
		return err
	}
	p := *inImage
	if p == "" {
		p = "/" + filepath.Base(*bin)
	}
	cfg := oci.Config{Entrypoint: strings.Fields(*entrypoint), Cmd: strings.Fields(*cmd), User: *user}
	if len(cfg.Entrypoint) == 0 {
		cfg.Entrypoint = []string{p}
	}
	files := []oci.File{{Path: p, Mode: 0o755, Data: data}}

	var archive bytes.Buffer
	if _, err := oci.Write(&archive, *ref, files, cfg, oci.WithArch(*arch)); err != nil {
		return err
	}
	result := archive.Bytes()
	if *format == "docker" {
		if result, err = dockerArchive(result, *ref); err != nil {
			return err
		}
	}
	return writeFileAtomic(*out, result)
}

func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerArchive turns a single-image OCI layout tar into a docker-archive
// holding the same config and the layer uncompressed, tagged ref.
func dockerArchive(ociTar []byte, ref string) ([]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(ociTar))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read OCI archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[h.Name] = b
	}
	blob := func(digest string) ([]byte, error) {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
		if !ok {
			return nil, fmt.Errorf("OCI archive lacks blob %s", digest)
		}
		return b, nil
	}

	var idx oci.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	if len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("index.json has %d manifests, want 1", len(idx.Manifests))
	}
	manBlob, err := blob(idx.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	var man oci.Manifest
	if err := json.Unmarshal(manBlob, &man); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	cfgBlob, err := blob(man.Config.Digest)
	if err != nil {
		return nil, err
	}
	var cfg oci.ImageConfig
	if err := json.Unmarshal(cfgBlob, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(man.Layers) != len(cfg.RootFS.DiffIDs) {
		return nil, errors.New("manifest layers and config diff_ids differ in number")
	}

	out := map[string][]byte{}
	cfgName := strings.TrimPrefix(man.Config.Digest, "sha256:") + ".json"
	out[cfgName] = cfgBlob
	dm := dockerManifest{Config: cfgName, RepoTags: []string{ref}}
	for i, l := range man.Layers {
		gz, err := blob(l.Digest)
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		layer, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		name := strings.TrimPrefix(cfg.RootFS.DiffIDs[i], "sha256:") + "/layer.tar"
		out[name] = layer
		dm.Layers = append(dm.Layers, name)
	}
	manifestJSON, err := json.Marshal([]dockerManifest{dm})
	if err != nil {
		return nil, err
	}
	out["manifest.json"] = manifestJSON
	return writeTar(out)
}

// writeTar writes files (and their parent directories) sorted by name,
// owned by 0:0 with a fixed time, so the output is reproducible.
func writeTar(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	dirs := map[string]bool{}
	for n := range files {
		names = append(names, n)
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		names = append(names, d+"/")
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(n, "/") {
			h = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
