package sfx

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func packed(t *testing.T) (out string, program []byte) {
	t.Helper()
	dir := t.TempDir()
	launcher := filepath.Join(dir, "launcher")
	os.WriteFile(launcher, []byte("#!launcher\n"), 0o755)
	program = make([]byte, 3<<20)
	rand.Read(program[:1<<20]) // part incompressible, part not
	bin := filepath.Join(dir, "kubox")
	os.WriteFile(bin, program, 0o755)
	out = filepath.Join(dir, "kubox-packed")
	if err := Pack(launcher, bin, out); err != nil {
		t.Fatal(err)
	}
	return out, program
}

func TestRoundTrip(t *testing.T) {
	out, program := packed(t)
	data, _ := os.ReadFile(out)
	if !bytes.HasPrefix(data, []byte("#!launcher\n")) {
		t.Fatal("the launcher does not start the packed file")
	}
	if len(data) >= len(program) {
		t.Errorf("packed file %d bytes, program %d: not compressed", len(data), len(program))
	}
	f, _ := os.Open(out)
	defer f.Close()
	p, err := Find(f)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "data", "kubox-"+p.ID(), "kubox")
	if err := Extract(f, p, dest); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, program) {
		t.Fatal("unpacked program differs")
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestDamaged(t *testing.T) {
	out, _ := packed(t)
	data, _ := os.ReadFile(out)
	data[len(data)-trailerSize-100] ^= 0xff // inside the compressed program
	os.WriteFile(out, data, 0o755)
	f, _ := os.Open(out)
	defer f.Close()
	p, err := Find(f)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "kubox")
	if err := Extract(f, p, dest); err == nil {
		t.Fatal("a damaged payload was unpacked")
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("a damaged payload left %s behind", dest)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestPlainFile(t *testing.T) {
	f, err := os.Open("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if _, err := Find(f); !errors.Is(err, ErrNoPayload) {
		t.Fatalf("Find on /bin/sh: %v, want ErrNoPayload", err)
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for i, name := range []string{"kubox-old", "kubox-previous", "kubox-new", "other"} {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		ts := now.Add(time.Duration(i) * time.Minute)
		os.Chtimes(filepath.Join(dir, name), ts, ts)
	}
	Prune(dir, "kubox-new")
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "kubox-new kubox-previous other" {
		t.Errorf("after prune: %s", got)
	}
}

// TestPackCompressed: a frame from the zstd command, with its long window,
// unpacks like one from Pack.
func TestPackCompressed(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("no zstd command")
	}
	dir := t.TempDir()
	program := bytes.Repeat([]byte("kubox "), 1<<20)
	bin := filepath.Join(dir, "kubox")
	os.WriteFile(bin, program, 0o755)
	launcher := filepath.Join(dir, "launcher")
	os.WriteFile(launcher, []byte("#!launcher\n"), 0o755)
	if out, err := exec.Command("zstd", "-q", "-19", "--long=27", "-o", bin+".zst", bin).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}
	sum := sha256.Sum256(program)
	out := filepath.Join(dir, "packed")
	if err := PackCompressed(launcher, bin+".zst", sum[:], out); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	p, err := Find(f)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "unpacked")
	if err := Extract(f, p, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, program) {
		t.Fatal("unpacked program differs")
	}
}

// TestCheck: an unpacked program passes as Extract left it, and fails once
// changed, replaced by a link, opened to others or handed to another user.
func TestCheck(t *testing.T) {
	out, _ := packed(t)
	f, _ := os.Open(out)
	defer f.Close()
	p, err := Find(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "kubox")
	if err := Check(dest, p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	unpack := func() {
		t.Helper()
		os.Remove(dest)
		if err := Extract(f, p, dest); err != nil {
			t.Fatal(err)
		}
	}
	unpack()
	if err := Check(dest, p); err != nil {
		t.Fatalf("as unpacked: %v", err)
	}

	data, _ := os.ReadFile(dest)
	data[len(data)/2] ^= 1
	os.WriteFile(dest, data, 0o755)
	if err := Check(dest, p); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), dest+" does not match its hash") {
		t.Errorf("changed file: %v", err)
	}

	unpack()
	os.Chmod(dest, 0o775)
	if err := Check(dest, p); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("group-writable file: %v", err)
	}

	unpack()
	os.Rename(dest, dest+".real")
	os.Symlink(dest+".real", dest)
	if err := Check(dest, p); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symbolic link to the right program: %v", err)
	}

	if os.Geteuid() == 0 {
		unpack()
		os.Chown(dest, 65534, 65534)
		if err := Check(dest, p); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("file of another user: %v", err)
		}
	}
}

// TestPrepareDir: a new dir is 0755 whatever the umask; an existing one of
// this user's loses group and other write; another user's is refused.
func TestPrepareDir(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	base := t.TempDir()
	dir := filepath.Join(base, "data", "kubox-1")
	if err := PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o755 {
		t.Errorf("new dir: mode %v, want 0755", st.Mode().Perm())
	}
	os.Chmod(dir, 0o777)
	if err := PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o755 {
		t.Errorf("world-writable dir: mode %v after, want 0755", st.Mode().Perm())
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	if err := PrepareDir(file); err == nil {
		t.Error("a file passed as a directory")
	}
	if os.Geteuid() == 0 {
		os.Chown(dir, 65534, 65534)
		if err := PrepareDir(dir); !errors.Is(err, ErrUnsafe) {
			t.Errorf("dir of another user: %v, want ErrUnsafe", err)
		}
	}
}
