// Package images makes the system images a kubox node runs without ever
// pulling: they are built at start from executables inside the kubox binary
// and imported into containerd under kubox.local/… names.
package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubox-io/kubox/pkg/images/oci"
)

// Image is a system image ready to import.
type Image struct {
	Ref     string
	Archive []byte // OCI image layout tar
}

// Pause builds the pod sandbox image from the bundled pause program. Its
// tag derives from the program's content, so a new kubox brings a new tag.
func Pause(binDir string) (Image, error) {
	path := filepath.Join(binDir, "pause")
	bin, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("reading the bundled pause program: %w", err)
	}
	sum := sha256.Sum256(bin)
	ref := "kubox.local/pause:" + hex.EncodeToString(sum[:6])
	var b bytes.Buffer
	if _, err := oci.Write(&b, ref, []oci.File{{Path: "/pause", Mode: 0o755, Data: bin}},
		oci.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}); err != nil {
		return Image{}, err
	}
	return Image{Ref: ref, Archive: b.Bytes()}, nil
}
