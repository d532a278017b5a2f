package repo

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// mapPath matches a pkg/… or cmd/… path in ARCHITECTURE.md that stands on
// its own (not the tail of ./pkg/… or of an import path).
var mapPath = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])((?:pkg|cmd)/[A-Za-z0-9_./-]+)`)

// TestArchitectureMap keeps ARCHITECTURE.md, the code map, true: every
// directory under pkg/ and cmd/ that holds Go files is named in it by its
// path, and every pkg/ or cmd/ path it names exists.
func TestArchitectureMap(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatalf("the code map is missing: %v; create ARCHITECTURE.md at the top level", err)
	}
	named := map[string]bool{}
	for _, m := range mapPath.FindAllStringSubmatch(string(doc), -1) {
		if p := strings.TrimRight(m[1], "./"); strings.Contains(p, "/") {
			named[p] = true
		}
	}

	pkgs := map[string]bool{}
	for _, top := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				// The go tool ignores these directories.
				if name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(name, ".go") {
				rel, err := filepath.Rel(root, filepath.Dir(path))
				if err != nil {
					return err
				}
				pkgs[filepath.ToSlash(rel)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d package directories under pkg/ and cmd/", len(pkgs))
	}

	for _, p := range sorted(pkgs) {
		if !named[p] {
			t.Errorf("%s holds Go files but ARCHITECTURE.md does not name it: update ARCHITECTURE.md (add %s and its one responsibility to the package list)", p, p)
		}
	}
	for _, p := range sorted(named) {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			t.Errorf("ARCHITECTURE.md names %s, which does not exist: update ARCHITECTURE.md", p)
		}
	}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
