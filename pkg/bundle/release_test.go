package bundle

import (
	"embed"
	"io/fs"
	"testing"
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
	releasePages(data)
	releasePages("")
	if data != string(want) {
		t.Error("the embedded file reads differently after its pages were released")
	}
}
