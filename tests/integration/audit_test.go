package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAuditLog: with --audit-log-path, a create shows in the log with who
// made it, and the log is rotated by size.
func TestAuditLog(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	dir := filepath.Join(t.TempDir(), "audit")
	log := filepath.Join(dir, "audit.log")
	s := newServer(t, "--audit-log-path", log, "--audit-log-maxsize", "1", "--audit-log-maxbackup", "2")
	s.StartReady()
	s.MustKubectl("create", "configmap", "audited", "--from-literal=k=v")
	waitFor(t, "the create in the audit log", 30*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(log)
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, `"verb":"create"`) && strings.Contains(l, `"name":"audited"`) && strings.Contains(l, `"username":"system:admin"`) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d bytes", len(data))
	})

	// About 1 kB per request: 2,000 creates pass the 1 MB limit.
	c := s.Client()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill-%d-%d", w, i)}}
				c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}) //nolint:errcheck // only the log's size counts
			}
		}()
	}
	wg.Wait()
	waitFor(t, "a rotated audit log", 30*time.Second, func() (bool, string) {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return len(entries) >= 2, strings.Join(names, " ")
	})
	if data, err := os.ReadFile(log); err == nil && len(data) > 1<<20 {
		t.Errorf("the current audit log holds %d bytes, over --audit-log-maxsize 1 (MB)", len(data))
	}
}
