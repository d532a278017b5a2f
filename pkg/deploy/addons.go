package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// addonHeader marks a manifest file kubox wrote, so that kubox only ever
// removes its own files.
const addonHeader = "# Written by kubox from its built-in add-ons; to change it, create %s.skip and edit this file.\n"

// WriteAddons renders every *.yaml template of addons with values into
// dir. A disabled add-on's file is removed (and with it, by the
// controller, its objects); a file with a .skip beside it is left alone.
func WriteAddons(dir string, addons fs.FS, values any, disabled map[string]bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	names, err := fs.Glob(addons, "*.yaml")
	if err != nil {
		return err
	}
	for _, name := range names {
		addon := strings.TrimSuffix(name, ".yaml")
		target := filepath.Join(dir, name)
		if _, err := os.Stat(target + ".skip"); err == nil {
			continue
		}
		if disabled[addon] {
			if data, err := os.ReadFile(target); err == nil && bytes.HasPrefix(data, []byte(fmt.Sprintf(addonHeader, name))) {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
			continue
		}
		src, err := fs.ReadFile(addons, name)
		if err != nil {
			return err
		}
		tmpl, err := template.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("add-on %s: %w", name, err)
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, addonHeader, name)
		if err := tmpl.Execute(&b, values); err != nil {
			return fmt.Errorf("add-on %s: %w", name, err)
		}
		if old, err := os.ReadFile(target); err == nil && bytes.Equal(old, b.Bytes()) {
			continue
		}
		if err := atomicfile.Write(target, b.Bytes(), 0o600); err != nil {
			return err
		}
	}
	return nil
}
