package kuboxmetrics

import (
	"sync"
	"time"
)

// Imports counts the node's image archive imports (agent/images), for
// kubox_image_import_*: an air-gapped node's images arrive this way, and a
// slow or failing import is what keeps its pods from starting.
type Imports struct {
	mu            sync.Mutex
	ok, failed    int64
	images, bytes int64
	seconds       float64
}

// Record adds one archive's import: how many images and bytes it gave, how
// long it took, and whether it failed.
func (i *Imports) Record(images, bytes int64, took time.Duration, err error) {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.images += images
	i.bytes += bytes
	i.seconds += took.Seconds()
	if err != nil {
		i.failed++
	} else {
		i.ok++
	}
}

// importFigures is a copy of the counters, read under the lock.
type importFigures struct {
	ok, failed, images, bytes int64
	seconds                   float64
}

func (i *Imports) figures() (importFigures, bool) {
	if i == nil {
		return importFigures{}, false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return importFigures{ok: i.ok, failed: i.failed, images: i.images, bytes: i.bytes, seconds: i.seconds}, true
}
