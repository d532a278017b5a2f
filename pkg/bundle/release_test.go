package bundle

import (
	"embed"
	"encoding/binary"
	"io/fs"
	"os"
	"testing"
	"unsafe"
)

//go:embed testdata/pages.txt
var pagesFS embed.FS

// The embedded file is found where the executable maps it, and reading it
// after its pages are released gives the same bytes.
func TestReleaseEmbeddedPages(t *testing.T) {
	const name = "assets/README.md"
	want, err := fs.ReadFile(assets, name)
	if err != nil {
		t.Fatal(err)
	}
	data := embeddedData(assets, name)
	if data != string(want) {
		t.Fatalf("embeddedData(%q) = %d bytes, want the file's %d", name, len(data), len(want))
	}
	if embeddedData(assets, "assets/missing") != "" {
		t.Error("embeddedData found a file that is not there")
	}

	// Several pages: the ones the file covers whole are released.
	const pages = "testdata/pages.txt"
	want, err = fs.ReadFile(pagesFS, pages)
	if err != nil {
		t.Fatal(err)
	}
	data = embeddedData(pagesFS, pages)
	if data != string(want) {
		t.Fatalf("embeddedData(%q) = %d bytes, want the file's %d", pages, len(data), len(want))
	}
	// The last whole page of the file: mapped once read, gone after release.
	page := os.Getpagesize()
	start := uintptr(unsafe.Pointer(unsafe.StringData(data)))
	last := (start+uintptr(len(data)))/uintptr(page)*uintptr(page) - uintptr(page)
	if last < start {
		t.Fatalf("%s does not cover a whole page", pages)
	}
	if data != string(want) || !mapped(t, last) {
		t.Fatal("the file's pages are not mapped after it was read")
	}
	releasePages(data)
	releasePages("")
	if mapped(t, last) {
		t.Error("a whole page of the file is still mapped after its release")
	}
	if data != string(want) {
		t.Error("the embedded file reads differently after its pages were released")
	}
}

// mapped reports whether the page at addr is present in this process's
// page tables (/proc/self/pagemap, bit 63).
func mapped(t *testing.T, addr uintptr) bool {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer f.Close()
	var e [8]byte
	if _, err := f.ReadAt(e[:], int64(addr/uintptr(os.Getpagesize()))*8); err != nil {
		t.Skipf("pagemap: %v", err)
	}
	return binary.LittleEndian.Uint64(e[:])>>63 == 1
}
