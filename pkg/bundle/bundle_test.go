package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"
)

// makePayload builds a payload the way scripts/payload/pack does: MANIFEST
// first, then the files in name order, zstd-compressed in two frames, the
// first holding only the MANIFEST entry. lie replaces the MANIFEST's sha256
// of the named files with a wrong one.
func makePayload(t *testing.T, files map[string]string, lie ...string) []byte {
	t.Helper()
	head, body := makeTar(t, files, lie...)
	return append(zstdOf(t, head), zstdOf(t, body)...)
}

// makeTar returns the tar of a payload split after its MANIFEST entry.
func makeTar(t *testing.T, files map[string]string, lie ...string) (head, body []byte) {
	t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var manifest strings.Builder
	for _, name := range names {
		sum := sha256.Sum256([]byte(files[name]))
		for _, l := range lie {
			if l == name {
				sum = sha256.Sum256([]byte("something else"))
			}
		}
		fmt.Fprintf(&manifest, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	add := func(name, data string, mode int64) {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	add(manifestName, manifest.String(), 0o644)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	split := raw.Len()
	for _, name := range names {
		add(name, files[name], 0o755)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return raw.Bytes()[:split], raw.Bytes()[split:]
}

// TestPayloadFrames checks that one frame or two make no difference to the
// reader, and that the MANIFEST is read without touching the second frame.
func TestPayloadFrames(t *testing.T) {
	head, body := makeTar(t, filesV1)
	one := zstdOf(t, append(append([]byte{}, head...), body...))
	b := extractOK(t, t.TempDir(), one)
	checkFiles(t, b, filesV1)
	if b2 := extractOK(t, t.TempDir(), makePayload(t, filesV1)); b2.Hash != b.Hash {
		t.Errorf("one frame gives hash %s, two frames %s: want the same", b.Hash, b2.Hash)
	}

	// The second frame damaged: the MANIFEST still reads, extraction fails.
	broken := append(zstdOf(t, head), []byte("\x28\xb5\x2f\xfd garbage that is no zstd frame")...)
	_, entries, err := payloadFromBytes(broken).manifest()
	if err != nil || len(entries) != len(filesV1) {
		t.Fatalf("reading the MANIFEST touched the second frame: %v, %v", entries, err)
	}
	if _, err := extract(t.TempDir(), payloadFromBytes(broken)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("extract of a broken second frame: %v, want a damaged-payload error", err)
	}
}

var filesV1 = map[string]string{
	"runc":   "runc v1 " + strings.Repeat("r", 5000),
	"bridge": "bridge v1",
	"hello":  "#!/bin/sh\necho hello from the bundle\n",
}

func extractOK(t *testing.T, dataDir string, payload []byte) Bundle {
	t.Helper()
	b, err := extract(dataDir, payloadFromBytes(payload))
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	return b
}

func checkFiles(t *testing.T, b Bundle, files map[string]string) {
	t.Helper()
	des, err := os.ReadDir(b.BinDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != len(files) {
		t.Errorf("%s holds %d files, want %d", b.BinDir, len(des), len(files))
	}
	for name, want := range files {
		path := filepath.Join(b.BinDir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", path, fi.Mode())
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s: content %q, want %q", path, got, want)
		}
	}
}

func readLink(t *testing.T, path string) string {
	t.Helper()
	target, err := os.Readlink(path)
	if err != nil {
		t.Fatalf("readlink: %v", err)
	}
	return target
}

// dataEntries lists <dataDir>/data, for checks that nothing is left over.
func dataEntries(t *testing.T, dataDir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dataDir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestExtract(t *testing.T) {
	dataDir := t.TempDir()
	b := extractOK(t, dataDir, makePayload(t, filesV1))

	if len(b.Hash) != 16 {
		t.Errorf("Hash %q: want 16 hex digits", b.Hash)
	}
	if want := filepath.Join(dataDir, "data", b.Hash); b.Dir != want {
		t.Errorf("Dir = %s, want %s", b.Dir, want)
	}
	if want := filepath.Join(b.Dir, "bin"); b.BinDir != want {
		t.Errorf("BinDir = %s, want %s", b.BinDir, want)
	}
	checkFiles(t, b, filesV1)
	if got := readLink(t, filepath.Join(dataDir, "data", "current")); got != b.Hash {
		t.Errorf("current -> %s, want %s", got, b.Hash)
	}
	if _, err := os.Lstat(filepath.Join(dataDir, "data", "previous")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("previous after the first extraction: %v, want none", err)
	}
	if got, want := dataEntries(t, dataDir), []string{".lock", b.Hash, "current"}; !equal(got, want) {
		t.Errorf("data dir holds %v, want %v", got, want)
	}

	// The executables run from where they were put.
	out, err := exec.Command(filepath.Join(b.BinDir, "hello")).Output()
	if err != nil || string(out) != "hello from the bundle\n" {
		t.Errorf("running the extracted script: %q, %v", out, err)
	}
}

func TestExtractRelativeDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	b := extractOK(t, "state", makePayload(t, filesV1))
	if !filepath.IsAbs(b.BinDir) {
		t.Errorf("BinDir %s is not absolute; containerd's PATH needs it to be", b.BinDir)
	}
	checkFiles(t, b, filesV1)
}

func TestExtractFastPath(t *testing.T) {
	dataDir := t.TempDir()
	payload := makePayload(t, filesV1)
	b := extractOK(t, dataDir, payload)

	// Mark every file; a second extraction that rewrote them would lose the mark.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	before := map[string]os.FileInfo{}
	for name := range filesV1 {
		path := filepath.Join(b.BinDir, name)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = fi
	}

	again := extractOK(t, dataDir, payload)
	if again != b {
		t.Errorf("second extraction returned %+v, want %+v", again, b)
	}
	for name, fi := range before {
		now, err := os.Stat(filepath.Join(b.BinDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !now.ModTime().Equal(old) || !os.SameFile(fi, now) {
			t.Errorf("%s was rewritten by an extraction that had nothing to do", name)
		}
	}
	checkFiles(t, b, filesV1)
}

func TestExtractRepairsDamage(t *testing.T) {
	payload := makePayload(t, filesV1)
	for _, tc := range []struct {
		name   string
		damage func(binDir string) error
	}{
		{"changed content", func(d string) error {
			return os.WriteFile(filepath.Join(d, "runc"), []byte("runc v1 tampered"), 0o755)
		}},
		{"same size, one byte flipped", func(d string) error {
			data := []byte(filesV1["runc"])
			data[len(data)-1] ^= 1
			return os.WriteFile(filepath.Join(d, "runc"), data, 0o755)
		}},
		{"missing file", func(d string) error { return os.Remove(filepath.Join(d, "bridge")) }},
		{"not executable", func(d string) error { return os.Chmod(filepath.Join(d, "bridge"), 0o644) }},
		{"extra file", func(d string) error {
			return os.WriteFile(filepath.Join(d, "intruder"), []byte("x"), 0o755)
		}},
		{"bin dir gone", func(d string) error { return os.RemoveAll(d) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			b := extractOK(t, dataDir, payload)
			if err := tc.damage(b.BinDir); err != nil {
				t.Fatal(err)
			}
			if verify(b.BinDir, mustEntries(t, payload)) == nil {
				t.Fatal("verify does not see the damage")
			}
			again := extractOK(t, dataDir, payload)
			if again != b {
				t.Errorf("repair returned %+v, want %+v", again, b)
			}
			checkFiles(t, again, filesV1)
			if got, want := dataEntries(t, dataDir), []string{".lock", b.Hash, "current"}; !equal(got, want) {
				t.Errorf("after the repair the data dir holds %v, want %v", got, want)
			}
		})
	}
}

func mustEntries(t *testing.T, payload []byte) []entry {
	t.Helper()
	_, entries, err := payloadFromBytes(payload).manifest()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestExtractKeepsPrevious(t *testing.T) {
	dataDir := t.TempDir()
	data := filepath.Join(dataDir, "data")
	filesV2 := map[string]string{"runc": "runc v2", "bridge": "bridge v2", "pause": "pause v2"}
	filesV3 := map[string]string{"runc": "runc v3"}

	b1 := extractOK(t, dataDir, makePayload(t, filesV1))
	b2 := extractOK(t, dataDir, makePayload(t, filesV2))
	if b1.Hash == b2.Hash {
		t.Fatalf("two different payloads got one hash %s", b1.Hash)
	}
	if got := readLink(t, filepath.Join(data, "current")); got != b2.Hash {
		t.Errorf("current -> %s, want the new %s", got, b2.Hash)
	}
	if got := readLink(t, filepath.Join(data, "previous")); got != b1.Hash {
		t.Errorf("previous -> %s, want the old %s", got, b1.Hash)
	}
	checkFiles(t, b1, filesV1) // the previous version stays usable
	checkFiles(t, b2, filesV2)
	// The links work through the file system, relative to the data dir.
	if got, err := os.ReadFile(filepath.Join(data, "current", "bin", "runc")); err != nil || string(got) != "runc v2" {
		t.Errorf("current/bin/runc: %q, %v", got, err)
	}

	// A third version: the first is removed, the second becomes previous.
	b3 := extractOK(t, dataDir, makePayload(t, filesV3))
	if got := readLink(t, filepath.Join(data, "current")); got != b3.Hash {
		t.Errorf("current -> %s, want %s", got, b3.Hash)
	}
	if got := readLink(t, filepath.Join(data, "previous")); got != b2.Hash {
		t.Errorf("previous -> %s, want %s", got, b2.Hash)
	}
	if _, err := os.Stat(b1.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the version before previous is still there: %v", err)
	}
	want := []string{".lock", b2.Hash, b3.Hash, "current", "previous"}
	sort.Strings(want)
	if got := dataEntries(t, dataDir); !equal(got, want) {
		t.Errorf("data dir holds %v, want %v", got, want)
	}

	// Going back to the second version (a rollback) reuses its directory.
	again := extractOK(t, dataDir, makePayload(t, filesV2))
	if again != b2 {
		t.Errorf("rollback returned %+v, want %+v", again, b2)
	}
	if got := readLink(t, filepath.Join(data, "current")); got != b2.Hash {
		t.Errorf("after rollback current -> %s, want %s", got, b2.Hash)
	}
	if got := readLink(t, filepath.Join(data, "previous")); got != b3.Hash {
		t.Errorf("after rollback previous -> %s, want %s", got, b3.Hash)
	}
}

func TestExtractConcurrent(t *testing.T) {
	dataDir := t.TempDir()
	payload := makePayload(t, filesV1)
	const n = 4
	var wg sync.WaitGroup
	results := make([]Bundle, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = extract(dataDir, payloadFromBytes(payload))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("extraction %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Errorf("extraction %d returned %+v, extraction 0 %+v", i, results[i], results[0])
		}
	}
	checkFiles(t, results[0], filesV1)
	if got, want := dataEntries(t, dataDir), []string{".lock", results[0].Hash, "current"}; !equal(got, want) {
		t.Errorf("data dir holds %v, want one payload dir: %v", got, want)
	}
}

func TestExtractRefusesDamagedPayload(t *testing.T) {
	dataDir := t.TempDir()
	_, err := extract(dataDir, payloadFromBytes(makePayload(t, filesV1, "bridge")))
	if err == nil {
		t.Fatal("a payload whose MANIFEST does not match its files was extracted")
	}
	for _, want := range []string{"damaged", "bridge", "MANIFEST", "download or build kubox again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Nothing half-done is left, and nothing points at it.
	if got, want := dataEntries(t, dataDir), []string{".lock"}; !equal(got, want) {
		t.Errorf("data dir holds %v after a refused payload, want %v", got, want)
	}

	// A good version in place stays current when a damaged one is refused.
	good := extractOK(t, dataDir, makePayload(t, filesV1))
	if _, err := extract(dataDir, payloadFromBytes(makePayload(t, map[string]string{"runc": "v9"}, "runc"))); err == nil {
		t.Fatal("damaged payload accepted")
	}
	if got := readLink(t, filepath.Join(dataDir, "data", "current")); got != good.Hash {
		t.Errorf("current -> %s after a refused payload, want %s", got, good.Hash)
	}
	checkFiles(t, good, filesV1)
}

func TestExtractRefusesMalformedPayload(t *testing.T) {
	for name, payload := range map[string][]byte{
		"not zstd":    []byte("this is not a zstd stream"),
		"truncated":   makePayload(t, filesV1)[:40],
		"bad entries": zstdOf(t, tarOf(t, manifestName, "nonsense\n")),
		"no manifest": zstdOf(t, tarOf(t, "runc", "x")),
		"path in name": zstdOf(t, tarOf(t, manifestName,
			strings.Repeat("0", 64)+"  ../../etc/passwd\n")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := extract(t.TempDir(), payloadFromBytes(payload))
			if err == nil || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("extract: %v, want a damaged-payload error", err)
			}
		})
	}
}

func tarOf(t *testing.T, name, data string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstdOf(t *testing.T, data []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

func TestExtractDataDirInTheWay(t *testing.T) {
	dataDir := t.TempDir()
	blocker := filepath.Join(dataDir, "data")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := extract(dataDir, payloadFromBytes(makePayload(t, filesV1)))
	if err == nil {
		t.Fatal("extracted into a data dir whose data/ is a file")
	}
	for _, want := range []string{blocker, "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNoPayload(t *testing.T) {
	if _, err := extract(t.TempDir(), nil); !errors.Is(err, ErrNoPayload) {
		t.Errorf("extract without a payload: %v, want ErrNoPayload", err)
	}
	if p := payloadFromBytes(nil); p != nil {
		t.Errorf("payloadFromBytes(nil) = %v, want nil", p)
	}
	// What a plain go build embeds: the README alone.
	plain := fstest.MapFS{"assets/README.md": {Data: []byte("placeholder")}}
	if _, err := payloadFromFS(plain); !errors.Is(err, ErrNoPayload) {
		t.Errorf("assets without payload.tar.zst: %v, want ErrNoPayload", err)
	}
	empty := fstest.MapFS{payloadPath: {Data: nil}}
	if _, err := payloadFromFS(empty); !errors.Is(err, ErrNoPayload) {
		t.Errorf("empty payload.tar.zst: %v, want ErrNoPayload", err)
	}
	// And one with a payload is found and extracts.
	with := fstest.MapFS{payloadPath: {Data: makePayload(t, filesV1)}}
	p, err := payloadFromFS(with)
	if err != nil {
		t.Fatalf("payloadFromFS: %v", err)
	}
	b, err := extract(t.TempDir(), p)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, b, filesV1)
}

// TestEmbedded checks the exported API against what this build embeds: the
// real payload after make, nothing after a plain go build.
func TestEmbedded(t *testing.T) {
	_, statErr := fs.Stat(assets, payloadPath)
	if Available() != (statErr == nil) {
		t.Fatalf("Available() = %v, but stat of the embedded payload: %v", Available(), statErr)
	}
	if !Available() {
		if _, err := Extract(t.TempDir()); !errors.Is(err, ErrNoPayload) {
			t.Errorf("Extract without a payload: %v, want ErrNoPayload", err)
		}
		if _, err := Names(); !errors.Is(err, ErrNoPayload) {
			t.Errorf("Names without a payload: %v, want ErrNoPayload", err)
		}
		t.Skip("built without the payload (run make payload to test it)")
	}
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"runc", "containerd-shim-runc-v2", "pause", "bridge", "host-local", "loopback", "portmap", "bandwidth", "firewall", "coredns", "crictl"} {
		if !contains(names, want) {
			t.Errorf("Names() = %v, missing %s", names, want)
		}
	}
	b, err := Extract(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(b.BinDir, name))
		if err != nil || fi.Mode() != 0o755 {
			t.Errorf("%s: %v, %v", name, fi, err)
		}
	}
	out, err := exec.Command(filepath.Join(b.BinDir, "pause"), "-v").Output()
	if err != nil || !strings.HasPrefix(string(out), "pause") {
		t.Errorf("pause -v: %q, %v", out, err)
	}
	// crictl reports the cri-tools release it was built from.
	out, err = exec.Command(filepath.Join(b.BinDir, "crictl"), "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "crictl version v1.") {
		t.Errorf("crictl --version: %q, %v", out, err)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
