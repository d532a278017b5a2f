// Package sfx makes and opens self-extracting kubox executables: a small
// launcher with the real kubox binary appended, zstd-compressed, and a
// trailer that names it. The shipped file stays small; the launcher unpacks
// the binary once per version (by content hash), checks it before every run
// and runs it.
package sfx

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The trailer closes the file: magic, compressed length, SHA-256 of the
// uncompressed binary.
const (
	magic       = "KUBOXSFX"
	trailerSize = len(magic) + 8 + sha256.Size
)

// ErrNoPayload means the file is a plain executable, not a packed one.
var ErrNoPayload = errors.New("no packed kubox inside")

// ErrDamaged means the packed program does not decode to what its hash
// says: the file was cut short or changed after it was made.
var ErrDamaged = errors.New("damaged")

// ErrMismatch means an unpacked file is not the program it was unpacked
// from: changed or corrupted since.
var ErrMismatch = errors.New("does not match its hash")

// ErrUnsafe means a directory belongs to, or is writable by, another user,
// who could swap a program unpacked there between its check and its start.
var ErrUnsafe = errors.New("another user could swap what is unpacked there")

// Payload locates a packed binary in a file.
type Payload struct {
	Offset, Length int64
	Sum            [sha256.Size]byte
}

// ID names the payload's content: the first 16 hex digits of its hash.
func (p Payload) ID() string { return hex.EncodeToString(p.Sum[:8]) }

// Pack writes launcher followed by program, compressed, and the trailer, to
// out (replaced atomically, mode 0755).
func Pack(launcher, program, out string) error {
	return assemble(launcher, out, func(w io.Writer) ([]byte, error) {
		b, err := os.Open(program)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		sum := sha256.New()
		enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithWindowSize(MaxWindow), zstd.WithEncoderConcurrency(runtime.NumCPU()))
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(enc, io.TeeReader(b, sum)); err != nil {
			enc.Close()
			return nil, err
		}
		return sum.Sum(nil), enc.Close()
	})
}

// PackCompressed is Pack for a program already compressed (a zstd frame
// with a window of at most MaxWindow, e.g. from `zstd -19 --long=27`,
// which packs tighter than the Go encoder); sum is the SHA-256 of the
// uncompressed program.
func PackCompressed(launcher, compressed string, sum []byte, out string) error {
	return assemble(launcher, out, func(w io.Writer) ([]byte, error) {
		c, err := os.Open(compressed)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		_, err = io.Copy(w, c)
		return sum, err
	})
}

// MaxWindow bounds the zstd window, and so the memory unpacking needs.
const MaxWindow = 1 << 27

// assemble writes launcher, then what body writes, then the trailer.
func assemble(launcher, out string, body func(io.Writer) (sum []byte, err error)) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".sfx-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	l, err := os.Open(launcher)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := io.Copy(tmp, l); err != nil {
		return err
	}
	start, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	sum, err := body(tmp)
	if err != nil {
		return err
	}
	if len(sum) != sha256.Size {
		return fmt.Errorf("a SHA-256 sum has %d bytes, not %d", sha256.Size, len(sum))
	}
	end, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	trailer := make([]byte, 0, trailerSize)
	trailer = append(trailer, magic...)
	trailer = binary.BigEndian.AppendUint64(trailer, uint64(end-start))
	trailer = append(trailer, sum...)
	if _, err := tmp.Write(trailer); err != nil {
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// Find reads the trailer of f.
func Find(f *os.File) (Payload, error) {
	st, err := f.Stat()
	if err != nil {
		return Payload{}, err
	}
	if st.Size() < int64(trailerSize) {
		return Payload{}, ErrNoPayload
	}
	buf := make([]byte, trailerSize)
	if _, err := f.ReadAt(buf, st.Size()-int64(trailerSize)); err != nil {
		return Payload{}, err
	}
	if string(buf[:len(magic)]) != magic {
		return Payload{}, ErrNoPayload
	}
	p := Payload{Length: int64(binary.BigEndian.Uint64(buf[len(magic):]))}
	copy(p.Sum[:], buf[len(magic)+8:])
	p.Offset = st.Size() - int64(trailerSize) - p.Length
	if p.Length <= 0 || p.Offset < 0 {
		return Payload{}, fmt.Errorf("%s: damaged trailer", f.Name())
	}
	return p, nil
}

// Extract unpacks the payload of f to path (mode 0755), checking its hash
// before the file appears: a reader never sees a partial or corrupt binary,
// and two launchers racing write the same content.
func Extract(f *os.File, p Payload, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".unpack-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	dec, err := zstd.NewReader(io.NewSectionReader(f, p.Offset, p.Length), zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer dec.Close()
	sum := sha256.New()
	w := &recordingWriter{w: io.MultiWriter(tmp, sum)}
	if _, err := io.Copy(w, dec); err != nil {
		if w.err != nil {
			return w.err // the disk, not the file
		}
		return fmt.Errorf("%s is %w (%v): download it again", f.Name(), ErrDamaged, err)
	}
	if got := sum.Sum(nil); string(got) != string(p.Sum[:]) {
		return fmt.Errorf("%s is %w: its packed kubox does not match its hash; download it again", f.Name(), ErrDamaged)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PrepareDir makes dir (and its missing parents) a place to unpack into and
// run from: created 0755 whatever the umask, owned by this user or root,
// and writable by nobody else, as the directory a checked file sits in
// must be for the check to hold until exec. It takes write access from
// group and others on a dir of this user's; a dir another user could write
// is ErrUnsafe.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err == nil {
		if err := os.Chmod(dir, 0o755); err != nil { // the umask may have taken bits or left group write
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	uid := owner(st)
	if uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("%s belongs to uid %d: %w", dir, uid, ErrUnsafe)
	}
	if st.Mode().Perm()&0o022 != 0 {
		if uid != os.Geteuid() {
			return fmt.Errorf("%s is writable by group or others: %w", dir, ErrUnsafe)
		}
		return os.Chmod(dir, st.Mode()&^0o022)
	}
	return nil
}

// Check reports whether path holds p's program as Extract left it: a
// regular file, not a symbolic link, owned by this user or root (who can
// change anything anyway), writable by neither group nor others, and
// hashing to p.Sum. In a dir PrepareDir passed, no other user can then
// change it before it runs. A missing file is fs.ErrNotExist; a changed
// one ErrMismatch.
//
// It hashes the whole file every time: about 0.2 s for kubox's 214 MB on
// an x86 CPU with SHA extensions and the page cache warm, 0.5 s cold. A
// record of size, mtime, inode and ctime kept beside it would be cheaper,
// but would be one more file to trust and keep in step; the full hash has
// no such gap.
func Check(path string, p Payload) error {
	lst, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if lst.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link", path)
	}
	if !lst.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(lst, st) {
		return fmt.Errorf("%s was replaced while it was checked", path)
	}
	if uid := owner(st); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("%s belongs to uid %d", path, uid)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others", path)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return err
	}
	if !bytes.Equal(sum.Sum(nil), p.Sum[:]) {
		return fmt.Errorf("%s %w", path, ErrMismatch)
	}
	return nil
}

// owner is the uid owning the file st describes.
func owner(st fs.FileInfo) int {
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// Prune removes unpacked versions in dir other than keep and the newest
// one before it, so an upgrade can still be rolled back by reinstalling
// while old versions do not pile up. A running process keeps its file.
func Prune(dir, keep string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "kubox-*"))
	var previous string
	var newest time.Time
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil || filepath.Base(m) == keep {
			continue
		}
		if st.ModTime().After(newest) {
			previous, newest = m, st.ModTime()
		}
	}
	for _, m := range matches {
		if filepath.Base(m) != keep && m != previous {
			os.RemoveAll(m)
		}
	}
}

// recordingWriter remembers a write error, to tell a full disk from a
// damaged file when a copy fails.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(b []byte) (int, error) {
	n, err := r.w.Write(b)
	if err != nil {
		r.err = err
	}
	return n, err
}
