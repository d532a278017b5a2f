package sfx

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
