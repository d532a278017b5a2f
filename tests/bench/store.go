package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// storeResult: SQLite after many updates of one object.
type storeResult struct {
	Updates         int     `json:"updates"`
	Concurrency     int     `json:"concurrency"`
	CompactInterval string  `json:"compact_interval"`
	DBBeforeMB      float64 `json:"db_before_mb"`
	WALBeforeMB     float64 `json:"wal_before_mb"`
	DBAfterMB       float64 `json:"db_after_mb"`
	WALAfterMB      float64 `json:"wal_after_mb"`
	DBCompactedMB   float64 `json:"db_after_compaction_mb"`
	WALCompactedMB  float64 `json:"wal_after_compaction_mb"`
	UpdatesPerS     float64 `json:"updates_per_s"`
	UpdateP99ms     float64 `json:"update_p99_ms"`
	UpdateMaxms     float64 `json:"update_max_ms"`
	ProbeMaxms      float64 `json:"probe_max_ms"`
	ProbeP99ms      float64 `json:"probe_p99_ms"`
}

func fileMB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return mb(fi.Size())
}

// measureStore updates one ConfigMap n times, by conc callers, while a probe reads
// another every 10 ms, and goes on probing for two compaction intervals
// after the updates, so that the compaction of those revisions happens
// under observation. The longest probe is the longest stall a client saw.
func measureStore(ctx context.Context, cs *kubernetes.Clientset, db, wal string, n, conc int, compact time.Duration) (*storeResult, error) {
	ns := "bench-store"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	for _, name := range []string{"hot", "probe"} {
		if _, err := cms.Create(ctx, configMap(name), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	r := &storeResult{Updates: n, Concurrency: conc, CompactInterval: compact.String(), DBBeforeMB: fileMB(db), WALBeforeMB: fileMB(wal)}
	pctx, stopProbe := context.WithCancel(ctx)
	var probes []float64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			s := time.Now()
			if _, err := cms.Get(pctx, "probe", metav1.GetOptions{}); err == nil {
				probes = append(probes, float64(time.Since(s).Microseconds())/1000)
			}
			_ = sleepCtx(pctx, 10*time.Millisecond)
		}
	}()
	lat, wall, err := parallel(ctx, n, conc, func(i int) error {
		patch := fmt.Sprintf(`{"data":{"n":"%d"}}`, i)
		_, err := cms.Patch(ctx, "hot", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	})
	if err != nil {
		stopProbe()
		wg.Wait()
		return nil, fmt.Errorf("updates: %w", err)
	}
	r.DBAfterMB, r.WALAfterMB = fileMB(db), fileMB(wal)
	_ = sleepCtx(ctx, 2*compact+5*time.Second)
	stopProbe()
	wg.Wait()
	r.DBCompactedMB, r.WALCompactedMB = fileMB(db), fileMB(wal)
	r.UpdatesPerS = float64(n) / wall.Seconds()
	r.UpdateP99ms = percentile(lat, 99)
	r.UpdateMaxms = percentile(lat, 100)
	r.ProbeP99ms = percentile(probes, 99)
	r.ProbeMaxms = percentile(probes, 100)
	return r, ctx.Err()
}
