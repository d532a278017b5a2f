// Command pack makes a released kubox file: `pack LAUNCHER KUBOX OUT`
// appends KUBOX, compressed, to the launcher (see pkg/sfx). With the zstd
// command on the PATH it compresses with that (level 19, long window),
// which packs tighter than the Go encoder.
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kubox-io/kubox/pkg/sfx"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: pack LAUNCHER KUBOX OUT")
		os.Exit(2)
	}
	if err := pack(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintf(os.Stderr, "pack: %v\n", err)
		os.Exit(1)
	}
}

func pack(launcher, program, out string) error {
	if _, err := exec.LookPath("zstd"); err != nil {
		return sfx.Pack(launcher, program, out)
	}
	f, err := os.Open(program)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	compressed := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".zst")
	defer os.Remove(compressed)
	cmd := exec.Command("zstd", "-q", "-f", "-19", fmt.Sprintf("--long=%d", bits.Len(uint(sfx.MaxWindow))-1), "-T0", "-o", compressed, program)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return sfx.PackCompressed(launcher, compressed, h.Sum(nil), out)
}
