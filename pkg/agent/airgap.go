package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubox-io/kubox/pkg/containerd"
)

// importProgressEvery is how often a long import reports how far it got.
const importProgressEvery = 5 * time.Second

// imageArchive tells whether name is an archive kubox imports.
func imageArchive(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// imageFiles lists the regular files in agent/images that match, by name,
// with a key that changes whenever a file does. A file modified within the
// last second is left out: it may still be being copied in.
func (n *node) imageFiles(match func(string) bool) (names []string, keys map[string]string) {
	entries, _ := os.ReadDir(n.p.ImagesDir)
	keys = map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !match(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < time.Second {
			continue
		}
		names = append(names, e.Name())
		keys[e.Name()] = fmt.Sprintf("%d/%d", info.Size(), info.ModTime().UnixNano())
	}
	sort.Strings(names)
	return names, keys
}

// archiveState is what was imported from agent/images, by file name, with
// the key (size and modification time) the file had; a corrupt file is
// remembered, in memory, so that it is reported once.
type archiveState struct {
	file   string
	seen   map[string]string
	failed map[string]string
}

// loadArchiveState reads what earlier imports recorded.
func (n *node) loadArchiveState() *archiveState {
	st := &archiveState{file: filepath.Join(n.p.AgentDir, "images-imported.json"), seen: map[string]string{}, failed: map[string]string{}}
	if data, err := os.ReadFile(st.file); err == nil {
		_ = json.Unmarshal(data, &st.seen)
	}
	return st
}

// importArchives imports, pinned, every archive in agent/images that is new
// or changed since st recorded it, and records it; a corrupt file is
// reported by name once and skipped. It returns early only when ctx ends.
func (n *node) importArchives(ctx context.Context, st *archiveState) {
	files, keys := n.imageFiles(imageArchive)
	changed := false
	for _, name := range files {
		key := keys[name]
		if st.seen[name] == key || st.failed[name] == key {
			continue
		}
		path := filepath.Join(n.p.ImagesDir, name)
		if err := n.importFile(ctx, path); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Errorf("cannot import image archive %s: %v; skipping it", path, err)
			st.failed[name] = key
			continue
		}
		st.seen[name] = key
		changed = true
	}
	if changed {
		if data, err := json.Marshal(st.seen); err == nil {
			_ = os.WriteFile(st.file, data, 0o600)
		}
	}
}

// preloadImages imports the archives already in agent/images before the
// kubelet starts, so that the pods of an air-gapped node find their images
// from the first moment, as the system pods find theirs, and none waits in
// an image pull's back-off. watchImages takes over once the node runs.
func (n *node) preloadImages(ctx context.Context) error {
	n.archives = n.loadArchiveState()
	n.importArchives(ctx, n.archives)
	return nil
}

// watchImages imports every image archive in agent/images whenever one
// appears or changes, and pulls the images that the lists there (*.txt)
// name. What was imported is remembered by name, size and modification
// time, so an unchanged file is never imported twice. Every image that
// comes this way is pinned: the kubelet's image GC never removes it.
func (n *node) watchImages(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.pullLists(ctx)
	}()
	defer wg.Wait()

	st := n.archives
	if st == nil {
		st = n.loadArchiveState()
	}
	for {
		n.importArchives(ctx, st)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// importFile imports one archive, pinned, reporting every few seconds the
// images done, the megabytes read and the rate, and the same at the end.
func (n *node) importFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := &countingReader{r: f}
	var images atomic.Int64
	start := time.Now()
	progress := func() string {
		return formatProgress(images.Load(), r.n.Load(), time.Since(start))
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(importProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n.log.Infof("importing %s: %s", path, progress())
			}
		}
	}()
	names, err := containerd.Import(ctx, n.p.ContainerdSocket, r, containerd.ImportOptions{
		Pinned: true,
		Done:   func(string) { images.Add(1) },
	})
	close(stop)
	<-stopped
	n.imports.Record(images.Load(), r.n.Load(), time.Since(start), err)
	if err != nil {
		return err
	}
	n.log.Infof("imported %s from %s: %s", strings.Join(names, ", "), path, progress())
	return nil
}

// formatProgress says how far an import got: "3 images, 412.0 MB read in
// 9.1s (45.3 MB/s)".
func formatProgress(images, bytes int64, elapsed time.Duration) string {
	mb := float64(bytes) / 1e6
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = mb / s
	}
	noun := "images"
	if images == 1 {
		noun = "image"
	}
	return fmt.Sprintf("%d %s, %.1f MB read in %s (%.1f MB/s)", images, noun, mb, elapsed.Round(100*time.Millisecond), rate)
}

// countingReader counts the bytes read through it, for progress reports
// from another goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// pullLists pulls, pinned, the images that agent/images/*.txt name, at
// start and whenever a list changes. A pulled image is remembered (in
// images-pulled.json) and never pulled again; a failed pull is logged and
// tried again when its list changes or kubox starts again, so a node
// without a registry starts as fast as one with.
func (n *node) pullLists(ctx context.Context) {
	stateFile := filepath.Join(n.p.AgentDir, "images-pulled.json")
	pulled := map[string]string{} // reference as listed -> image ID
	if data, err := os.ReadFile(stateFile); err == nil {
		_ = json.Unmarshal(data, &pulled)
	}
	read := map[string]string{} // list -> key when last read
	var puller *containerd.Puller
	defer func() {
		if puller != nil {
			puller.Close()
		}
	}()
	for {
		files, keys := n.imageFiles(func(name string) bool { return strings.HasSuffix(name, ".txt") })
		for _, name := range files {
			if read[name] == keys[name] {
				continue
			}
			read[name] = keys[name]
			path := filepath.Join(n.p.ImagesDir, name)
			refs, err := readImageList(path)
			if err != nil {
				n.log.Errorf("cannot read image list %s: %v", path, err)
				continue
			}
			for _, ref := range refs {
				if _, ok := pulled[ref]; ok {
					continue
				}
				if puller == nil {
					if puller, err = containerd.NewPuller(n.p.ContainerdSocket); err != nil {
						n.log.Errorf("cannot pull the images %s lists: %v", path, err)
						break
					}
				}
				start := time.Now()
				full, id, err := puller.Pull(ctx, ref, true)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					n.log.Errorf("cannot pull %s (listed in %s): %v; trying again when the list changes or kubox starts again", ref, path, err)
					continue
				}
				n.log.Infof("pulled %s (listed in %s) in %s", full, path, time.Since(start).Round(100*time.Millisecond))
				pulled[ref] = id
				if data, err := json.Marshal(pulled); err == nil {
					_ = os.WriteFile(stateFile, data, 0o600)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// readImageList reads image references, one a line; '#' starts a comment.
func readImageList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var refs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			refs = append(refs, line)
		}
	}
	return refs, sc.Err()
}
