// Package bundle has one job: the executables kubox carries inside itself
// (runc, containerd-shim-runc-v2, the CNI plugins, pause, coredns and crictl)
// and their extraction to <data-dir>/data/<hash>/bin, from where containerd
// runs them (and `kubox crictl` execs crictl).
//
// The payload is a zstd-compressed tar made by scripts/build-payload.sh: a
// MANIFEST entry first ("<sha256>  <name>" per executable), then the
// executables. The build puts the MANIFEST entry in a small zstd frame of its
// own, so that the check at every start reads it without decompressing the
// executables. The payload's hash, and so the directory it is extracted to, is
// the sha256 of the MANIFEST, which pins the sha256 of every executable.
//
// Layout of <data-dir>/data:
//
//	.lock        flock held while a kubox process checks or extracts
//	<hash>/bin/  the executables of one payload, each 0755
//	current      symlink to the <hash> of the running binary's payload
//	previous     symlink to the <hash> current pointed at before
//
// Older <hash> directories are removed once a new one is in place.
package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"

	"github.com/kubox-io/kubox/pkg/flock"
)

// ErrNoPayload: the binary was built without the payload (plain go build).
var ErrNoPayload = errors.New("this kubox binary was built without its bundled executables (runc, containerd shim, CNI plugins, pause, crictl); build it with `make`")

// assets holds payload.tar.zst when kubox is built with make; a plain go
// build embeds only its README.
//
//go:embed assets
var assets embed.FS

const (
	payloadPath  = "assets/payload.tar.zst"
	manifestName = "MANIFEST"
	hashLen      = 16 // hex digits of the sha256 of the MANIFEST used as Hash

	currentLink  = "current"
	previousLink = "previous"
	lockName     = ".lock"
	tmpPrefix    = ".tmp-" // directories being extracted
	oldPrefix    = ".old-" // damaged directories being replaced
)

// Bundle is one extracted payload.
type Bundle struct {
	Dir    string // <data-dir>/data/<hash>
	BinDir string // <data-dir>/data/<hash>/bin
	Hash   string // content hash of the payload: the first 16 hex digits of the sha256 of its MANIFEST
}

// Available reports whether the payload is embedded.
func Available() bool {
	_, err := payloadFromFS(assets)
	return err == nil
}

// Extract makes <dataDir>/data/<hash>/bin hold every executable of the
// payload and returns it. An intact earlier extraction is used as it is;
// a missing or damaged one is extracted anew, verified against the MANIFEST
// and renamed into place. Concurrent kubox processes on one data dir are
// serialized by an flock on <dataDir>/data/.lock.
func Extract(dataDir string) (Bundle, error) {
	p, err := payloadFromFS(assets)
	if err != nil {
		return Bundle{}, err
	}
	return extract(dataDir, p)
}

// Names lists the executables in the payload (from MANIFEST), for tests and
// `kubox check-config`.
func Names() ([]string, error) {
	p, err := payloadFromFS(assets)
	if err != nil {
		return nil, err
	}
	_, entries, err := p.manifest()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return names, nil
}

// payload is a source of the compressed tar; nil means there is none.
type payload struct {
	open func() (io.ReadCloser, error)
	// release, if set, drops the pages the payload was read through
	// from the process's memory once it has been read.
	release func()
}

// payloadFromFS finds the payload in an embedded assets tree, or returns
// ErrNoPayload.
func payloadFromFS(fsys fs.FS) (*payload, error) {
	fi, err := fs.Stat(fsys, payloadPath)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil, ErrNoPayload
	}
	p := &payload{open: func() (io.ReadCloser, error) { return fsys.Open(payloadPath) }}
	if ef, ok := fsys.(embed.FS); ok {
		if data := embeddedData(ef, payloadPath); int64(len(data)) == fi.Size() {
			p.release = func() { releasePages(data) }
		}
	}
	return p, nil
}

// payloadFromBytes makes a payload of the compressed tar in b.
func payloadFromBytes(b []byte) *payload {
	if len(b) == 0 {
		return nil
	}
	return &payload{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// entry is one line of the MANIFEST.
type entry struct {
	name string
	sum  string // lowercase hex sha256
}

// damaged reports a payload that does not hold together; it can only come
// from a broken build or a corrupted kubox binary.
func damaged(format string, args ...any) error {
	return fmt.Errorf("the bundled executables in this kubox binary are damaged: %s; download or build kubox again", fmt.Sprintf(format, args...))
}

// reader is an open payload: the tar stream inside the zstd stream.
type reader struct {
	*tar.Reader
	src io.Closer
	dec *zstd.Decoder
}

func (p *payload) reader() (*reader, error) {
	src, err := p.open()
	if err != nil {
		return nil, fmt.Errorf("bundled executables: open the embedded payload: %w", err)
	}
	// One goroutine, small buffers: this runs while the rest of kubox starts.
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		src.Close()
		return nil, damaged("%v", err)
	}
	return &reader{Reader: tar.NewReader(dec), src: src, dec: dec}, nil
}

func (r *reader) Close() {
	r.dec.Close()
	r.src.Close()
}

// readManifest reads the first entry, which must be the MANIFEST.
func (r *reader) readManifest() ([]byte, error) {
	hdr, err := r.Next()
	if err != nil {
		return nil, damaged("reading its first entry: %v", err)
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg {
		return nil, damaged("its first entry is %q, not %s", hdr.Name, manifestName)
	}
	if hdr.Size > 1<<20 {
		return nil, damaged("%s is %d bytes long", manifestName, hdr.Size)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, damaged("reading %s: %v", manifestName, err)
	}
	return b, nil
}

// manifest reads and parses the MANIFEST, decompressing only as much of the
// payload as it takes.
func (p *payload) manifest() ([]byte, []entry, error) {
	r, err := p.reader()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	raw, err := r.readManifest()
	if err != nil {
		return nil, nil, err
	}
	entries, err := parseManifest(raw)
	if err != nil {
		return nil, nil, err
	}
	return raw, entries, nil
}

func parseManifest(b []byte) ([]entry, error) {
	if len(b) == 0 {
		return nil, damaged("%s is empty", manifestName)
	}
	var entries []entry
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || !isHex(sum, sha256.Size*2) || !validName(name) {
			return nil, damaged("%s line %d is %q, not \"<sha256>  <name>\"", manifestName, i+1, line)
		}
		if seen[name] {
			return nil, damaged("%s lists %s twice", manifestName, name)
		}
		seen[name] = true
		entries = append(entries, entry{name: name, sum: sum})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

// validName accepts a plain file name: no directories, nothing hidden.
func validName(name string) bool {
	return name != "" && name != manifestName && !strings.HasPrefix(name, ".") &&
		!strings.ContainsAny(name, "/\x00\n")
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// extract is Extract for any payload; tests feed it synthetic ones.
func extract(dataDir string, p *payload) (Bundle, error) {
	if p == nil {
		return Bundle{}, ErrNoPayload
	}
	if p.release != nil {
		defer p.release()
	}
	raw, entries, err := p.manifest()
	if err != nil {
		return Bundle{}, err
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])[:hashLen]

	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return Bundle{}, fmt.Errorf("bundled executables: data dir %q: %w", dataDir, err)
	}
	root := filepath.Join(abs, "data")
	b := Bundle{Dir: filepath.Join(root, hash), BinDir: filepath.Join(root, hash, "bin"), Hash: hash}

	if err := os.MkdirAll(root, 0o755); err != nil {
		return Bundle{}, fsError("create", root, err)
	}
	unlock, err := lock(filepath.Join(root, lockName))
	if err != nil {
		return Bundle{}, err
	}
	defer unlock()

	if verify(b.BinDir, entries) != nil {
		if err := unpack(root, hash, raw, entries, p); err != nil {
			return Bundle{}, err
		}
	}
	if err := switchCurrent(root, hash); err != nil {
		return Bundle{}, err
	}
	if err := prune(root); err != nil {
		return Bundle{}, err
	}
	return b, nil
}

// lock takes an exclusive flock on path and returns its release.
func lock(path string) (func(), error) {
	release, err := flock.Exclusive(path)
	if err != nil {
		return nil, fmt.Errorf("bundled executables: %w; the data dir must be on a local file system that supports flock: choose another --data-dir", err)
	}
	return release, nil
}

// verify checks that binDir holds exactly the MANIFEST's executables, each a
// regular 0755 file with the listed sha256.
func verify(binDir string, entries []entry) error {
	des, err := os.ReadDir(binDir)
	if err != nil {
		return err
	}
	if len(des) != len(entries) {
		return fmt.Errorf("%s holds %d files, want %d", binDir, len(des), len(entries))
	}
	for _, e := range entries {
		path := filepath.Join(binDir, e.name)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
			return fmt.Errorf("%s has mode %v", path, fi.Mode())
		}
		got, err := FileSum(path)
		if err != nil {
			return err
		}
		if got != e.sum {
			return fmt.Errorf("%s has sha256 %s, want %s", path, got, e.sum)
		}
	}
	return nil
}

// FileSum is the hex SHA-256 of a file's content.
func FileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unpack extracts the payload into a temporary directory of root, checks
// every executable against the MANIFEST, syncs it and renames it to
// root/hash, replacing a damaged earlier copy.
func unpack(root, hash string, raw []byte, entries []entry, p *payload) error {
	tmp, err := os.MkdirTemp(root, tmpPrefix+hash+"-")
	if err != nil {
		return fsError("create", root, err)
	}
	defer os.RemoveAll(tmp) // gone already after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fsError("chmod", tmp, err)
	}
	bin := filepath.Join(tmp, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return fsError("create", bin, err)
	}

	r, err := p.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	again, err := r.readManifest()
	if err != nil {
		return err
	}
	if !bytes.Equal(again, raw) {
		return damaged("its %s changed between two reads", manifestName)
	}
	want := map[string]string{}
	for _, e := range entries {
		want[e.name] = e.sum
	}
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return damaged("reading the payload: %v", err)
		}
		sum, ok := want[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			return damaged("it holds %q, which %s does not list", hdr.Name, manifestName)
		}
		delete(want, hdr.Name)
		if err := writeExecutable(filepath.Join(bin, hdr.Name), r, hdr.Name, sum); err != nil {
			return err
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for name := range want {
			missing = append(missing, name)
		}
		sort.Strings(missing)
		return damaged("%s lists %s, which the payload does not hold", manifestName, strings.Join(missing, ", "))
	}
	if err := syncDir(bin); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}

	dst := filepath.Join(root, hash)
	if _, err := os.Lstat(dst); err == nil {
		// A damaged copy: move it aside, then put the new one in its place.
		// rename(2) replaces the empty directory made for a unique name
		// (os.Rename refuses to).
		old, err := os.MkdirTemp(root, oldPrefix+hash+"-")
		if err != nil {
			return fsError("create", root, err)
		}
		if err := syscall.Rename(dst, old); err != nil {
			return fsError("move aside", dst, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fsError("rename into place", dst, err)
	}
	return syncDir(root)
}

// writeExecutable writes one executable from r to path, mode 0755, and
// checks its sha256 against want before syncing it.
func writeExecutable(path string, r io.Reader, name, want string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fsError("create", path, err)
	}
	defer f.Close()
	if err := f.Chmod(0o755); err != nil { // the umask may have taken bits away
		return fsError("chmod", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fsError("write", path, err)
		}
		return damaged("reading %s: %v", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return damaged("%s has sha256 %s but its %s says %s", name, got, manifestName, want)
	}
	if err := f.Sync(); err != nil {
		return fsError("sync", path, err)
	}
	if err := f.Close(); err != nil {
		return fsError("write", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fsError("open", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fsError("sync", dir, err)
	}
	return nil
}

// switchCurrent points root/current at hash; what it pointed at before
// becomes root/previous. Each link is switched atomically.
func switchCurrent(root, hash string) error {
	old, err := os.Readlink(filepath.Join(root, currentLink))
	if err == nil && old == hash {
		return nil
	}
	if err == nil && isHashDir(root, old) {
		if err := setLink(root, previousLink, old); err != nil {
			return err
		}
	}
	if err := setLink(root, currentLink, hash); err != nil {
		return err
	}
	return syncDir(root)
}

// setLink makes root/name a symlink to target: a new link under a temporary
// name, renamed over the old one.
func setLink(root, name, target string) error {
	tmp := filepath.Join(root, "."+name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsError("remove", tmp, err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fsError("create symlink", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(root, name)); err != nil {
		return fsError("rename symlink", filepath.Join(root, name), err)
	}
	return nil
}

// isHashDir reports whether name is a payload directory in root.
func isHashDir(root, name string) bool {
	if !isHex(name, hashLen) {
		return false
	}
	fi, err := os.Lstat(filepath.Join(root, name))
	return err == nil && fi.IsDir()
}

// prune removes every payload directory but those current and previous point
// at, leftovers of interrupted extractions, and a previous link whose
// directory is gone. Names it does not know are left alone.
func prune(root string) error {
	keep := map[string]bool{}
	for _, link := range []string{currentLink, previousLink} {
		if target, err := os.Readlink(filepath.Join(root, link)); err == nil {
			if isHashDir(root, target) {
				keep[target] = true
			} else if link == previousLink {
				if err := os.Remove(filepath.Join(root, link)); err != nil {
					return fsError("remove", filepath.Join(root, link), err)
				}
			}
		}
	}
	des, err := os.ReadDir(root)
	if err != nil {
		return fsError("read", root, err)
	}
	for _, de := range des {
		name := de.Name()
		stale := de.IsDir() && ((isHex(name, hashLen) && !keep[name]) ||
			strings.HasPrefix(name, tmpPrefix) || strings.HasPrefix(name, oldPrefix))
		if !stale {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
			return fsError("remove the old bundled executables in", filepath.Join(root, name), err)
		}
	}
	return nil
}

// fsError names the path, the failed operation and what the user can do.
func fsError(op, path string, err error) error {
	cause := err
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		cause = pe.Err
	case errors.As(err, &le):
		cause = le.Err
	}
	var advice string
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EROFS):
		advice = "the file system is full or read-only; free space or choose another --data-dir"
	case errors.Is(err, fs.ErrPermission):
		advice = "kubox needs write access to its data dir; run it as root or choose another --data-dir"
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, fs.ErrExist):
		advice = "something else is in the way there; move it away or choose another --data-dir"
	default:
		advice = "check the data dir or choose another --data-dir"
	}
	return fmt.Errorf("bundled executables: %s %s: %w (%s)", op, path, cause, advice)
}

// Sum returns the sha256 (hex) the payload's MANIFEST records for the
// executable name, without extracting anything: the server names system
// images by it even where it runs no node.
func Sum(name string) (string, error) {
	p, err := payloadFromFS(assets)
	if err != nil {
		return "", err
	}
	_, entries, err := p.manifest()
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.name == name {
			return e.sum, nil
		}
	}
	return "", fmt.Errorf("the bundled executables include no %s; rebuild kubox with make", name)
}
