package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubox-io/kubox/pkg/containerd"
)

// imageArchive tells whether name is an archive kubox imports.
func imageArchive(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// watchImages imports every image archive in agent/images at start and
// whenever one appears or changes. What was imported is remembered by name,
// size and modification time, so an unchanged file is never imported twice;
// a corrupt file is reported by name once and skipped.
func (n *node) watchImages(ctx context.Context) error {
	stateFile := filepath.Join(n.p.AgentDir, "images-imported.json")
	seen := map[string]string{}
	if data, err := os.ReadFile(stateFile); err == nil {
		_ = json.Unmarshal(data, &seen)
	}
	failed := map[string]string{}
	for {
		entries, _ := os.ReadDir(n.p.ImagesDir)
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		changed := false
		for _, e := range entries {
			if e.IsDir() || !imageArchive(e.Name()) {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			// A file still being copied in changes size: wait for it.
			if time.Since(info.ModTime()) < time.Second {
				continue
			}
			key := fmt.Sprintf("%d/%d", info.Size(), info.ModTime().UnixNano())
			if seen[e.Name()] == key || failed[e.Name()] == key {
				continue
			}
			path := filepath.Join(n.p.ImagesDir, e.Name())
			names, err := n.importFile(ctx, path)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				n.log.Errorf("cannot import image archive %s: %v; skipping it", path, err)
				failed[e.Name()] = key
				continue
			}
			n.log.Infof("imported %s from %s", strings.Join(names, ", "), path)
			seen[e.Name()] = key
			changed = true
		}
		if changed {
			if data, err := json.Marshal(seen); err == nil {
				_ = os.WriteFile(stateFile, data, 0o600)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func (n *node) importFile(ctx context.Context, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return containerd.Import(ctx, n.p.ContainerdSocket, "", f, false)
}
