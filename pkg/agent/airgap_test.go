package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadImageList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "images.txt")
	list := "# the line's images\nregistry.example:5000/app:1.2  \n\n  docker.io/library/nginx@sha256:abc # pinned by digest\n   # indented comment\nbusybox\n"
	if err := os.WriteFile(path, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readImageList(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.example:5000/app:1.2", "docker.io/library/nginx@sha256:abc", "busybox"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("readImageList = %q, want %q", got, want)
	}
}

func TestFormatProgress(t *testing.T) {
	for _, c := range []struct {
		images, bytes int64
		elapsed       time.Duration
		want          string
	}{
		{0, 120e6, 4 * time.Second, "0 images, 120.0 MB read in 4s (30.0 MB/s)"},
		{1, 5e5, 250 * time.Millisecond, "1 image, 0.5 MB read in 300ms (2.0 MB/s)"},
		{3, 0, 0, "3 images, 0.0 MB read in 0s (0.0 MB/s)"},
	} {
		if got := formatProgress(c.images, c.bytes, c.elapsed); got != c.want {
			t.Errorf("formatProgress(%d, %d, %s) = %q, want %q", c.images, c.bytes, c.elapsed, got, c.want)
		}
	}
}

func TestCountingReader(t *testing.T) {
	r := &countingReader{r: strings.NewReader(strings.Repeat("x", 10000))}
	buf := make([]byte, 4096)
	for {
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	if n := r.n.Load(); n != 10000 {
		t.Fatalf("counted %d bytes, want 10000", n)
	}
}
