// Command pack packs the executables kubox carries inside itself into one
// reproducible, zstd-compressed tar that pkg/bundle embeds.
//
// Usage: pack [-window MiB] [-cli] BINDIR OUT.tar.zst
//
// (go run -C scripts/payload runs it in that directory: give absolute paths.)
//
// The tar holds a MANIFEST first ("<sha256>  <name>" per executable, sorted by
// name), then every regular file of BINDIR in name order, each with mode 0755,
// owner 0:0 and a fixed mtime, so the same executables always give the same
// bytes. The MANIFEST entry is a zstd frame of its own, the executables a
// second one. Every executable must be a statically linked ELF file: they run on
// nodes that may have no libc at all. OUT is replaced atomically, and left
// alone when it already holds the same bytes. With -cli the executables'
// frame comes from the zstd command (level 19, the same window), which packs
// about 3 MB tighter than the Go encoder; releases use it, everyday builds
// keep the faster Go encoder.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// manifestName is the first entry of the tar; pkg/bundle reads it by this name.
const manifestName = "MANIFEST"

// mtime is the fixed modification time of every entry.
var mtime = time.Unix(0, 0).UTC()

type file struct {
	name string
	data []byte
	sum  string
}

func main() {
	window := flag.Int("window", 32, "zstd window in MiB (a power of two): kubox needs this much memory while it extracts")
	cli := flag.Bool("cli", false, "compress the executables with the zstd command (level 19), for releases")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pack [-window MiB] [-cli] BINDIR OUT.tar.zst")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	if *window <= 0 || *window&(*window-1) != 0 {
		fmt.Fprintln(os.Stderr, "pack: -window must be a power of two")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *window<<20, *cli); err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

func run(binDir, out string, window int, cli bool) error {
	files, err := readExecutables(binDir)
	if err != nil {
		return err
	}
	manifest := makeManifest(files)

	var raw bytes.Buffer
	split, err := writeTar(&raw, manifest, files)
	if err != nil {
		return err
	}
	packed, err := compress(raw.Bytes(), split, window, cli)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, packed) {
		fmt.Printf("pack: %s is up to date\n", out)
	} else if err := writeAtomic(out, packed); err != nil {
		return err
	}
	for _, f := range files {
		fmt.Printf("pack: %-26s %9d bytes  sha256 %s\n", f.name, len(f.data), f.sum[:16])
	}
	fmt.Printf("pack: %s: %d executables, %d bytes tar, %d bytes zstd (%.1f%%, window %d MiB)\n",
		out, len(files), raw.Len(), len(packed), 100*float64(len(packed))/float64(raw.Len()), window>>20)
	return nil
}

// readExecutables reads every entry of dir, which must all be static ELF
// executables, in name order.
func readExecutables(dir string) ([]file, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []file
	for _, e := range entries {
		name := e.Name()
		if name == manifestName || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("%s: %q is not a valid executable name", dir, name)
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%s: %s is not a regular file", dir, name)
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := checkStatic(path, data); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		files = append(files, file{name: name, data: data, sum: hex.EncodeToString(sum[:])})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no executables", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// checkStatic refuses anything but an ELF executable without a program
// interpreter and without shared-library dependencies.
func checkStatic(path string, data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is not an executable (ELF type %v)", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it has a program interpreter); it must be static", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err == nil && len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v; it must be static", path, libs)
	}
	return nil
}

func makeManifest(files []file) []byte {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.sum, f.name)
	}
	return b.Bytes()
}

// compress writes the tar as two zstd frames: raw[:split], the MANIFEST entry,
// alone in a small first frame, so that kubox reads it at every start without
// allocating the window of the second frame, which holds the executables.
// One decoder reads both frames as one stream.
func compress(raw []byte, split, window int, cli bool) ([]byte, error) {
	head, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return nil, err
	}
	out := head.EncodeAll(raw[:split], nil)
	if err := head.Close(); err != nil {
		return nil, err
	}
	if cli {
		body, err := zstdCommand(raw[split:], window)
		if err != nil {
			return nil, err
		}
		return append(out, body...), nil
	}
	packed := bytes.NewBuffer(out)
	body, err := zstd.NewWriter(packed,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(window),
		zstd.WithEncoderConcurrency(1), // one stream of blocks: reproducible output
	)
	if err != nil {
		return nil, err
	}
	if _, err := body.Write(raw[split:]); err != nil {
		return nil, err
	}
	if err := body.Close(); err != nil {
		return nil, err
	}
	return packed.Bytes(), nil
}

// zstdCommand compresses data with the zstd command in one frame whose
// window is at most window bytes (single-threaded: reproducible output).
func zstdCommand(data []byte, window int) ([]byte, error) {
	if _, err := exec.LookPath("zstd"); err != nil {
		return nil, fmt.Errorf("-cli needs the zstd command: run bash scripts/install-release-deps.sh")
	}
	wlog := 0
	for 1<<wlog < window {
		wlog++
	}
	cmd := exec.Command("zstd", "-q", "-c", "-19", "-T1", fmt.Sprintf("--long=%d", wlog))
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("zstd: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// writeTar writes the MANIFEST and the files to w and returns the offset at
// which the MANIFEST entry ends.
func writeTar(w *bytes.Buffer, manifest []byte, files []file) (int, error) {
	tw := tar.NewWriter(w)
	add := func(name string, mode int64, data []byte) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     mode,
			Size:     int64(len(data)),
			ModTime:  mtime,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", name, err)
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(manifestName, 0o644, manifest); err != nil {
		return 0, err
	}
	if err := tw.Flush(); err != nil { // pads the entry to a whole tar block
		return 0, err
	}
	split := w.Len()
	for _, f := range files {
		if err := add(f.name, 0o755, f.data); err != nil {
			return 0, err
		}
	}
	return split, tw.Close()
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
