package integration

import (
	"os"
	"sync"
	"testing"
)

// built is a temporary directory that a build step shared by several tests
// fills at most once per test binary.
type built struct {
	prefix string
	make   func(dir string) error

	once sync.Once
	dir  string
	err  error
}

// get runs the build on first use and returns its directory.
func (b *built) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", b.prefix); b.err == nil {
			b.err = b.make(b.dir)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// TestMain removes what the suite's tests share (the test images, the test
// CSI driver).
func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*built{testImagesBuild, csiPluginBuild} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
	os.Exit(code)
}
