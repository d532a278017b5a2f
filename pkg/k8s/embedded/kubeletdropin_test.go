package embedded

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKubeletDropinsOverrideFileAndFlagsWin(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kubelet.yaml")
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 50\nfailSwapOn: false\nfailCgroupV1: false\n")
	dropins := filepath.Join(dir, "conf.d")
	head := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
	write(filepath.Join(dropins, "10-gc.conf"), head+"imageMinimumGCAge: 5s\nimageGCHighThresholdPercent: 70\n")
	write(filepath.Join(dropins, "20-gc.conf"), head+"imageGCHighThresholdPercent: 60\n")
	write(filepath.Join(dropins, "ignored.yaml"), "not: kubelet\n")
	kc, err := kubeletServer(file, []string{"--config-dir", dropins, "--image-gc-low-threshold", "40"})
	if err != nil {
		t.Fatal(err)
	}
	if kc.MaxPods != 50 || kc.ImageMinimumGCAge.Duration != 5*time.Second || kc.ImageGCHighThresholdPercent != 60 || kc.ImageGCLowThresholdPercent != 40 {
		t.Fatalf("maxPods %d, imageMinimumGCAge %s, high %d, low %d; want 50, 5s, 60 (later drop-in), 40 (flag)",
			kc.MaxPods, kc.ImageMinimumGCAge.Duration, kc.ImageGCHighThresholdPercent, kc.ImageGCLowThresholdPercent)
	}

	write(filepath.Join(dropins, "30-bad.conf"), "apiVersion: v1\nkind: ConfigMap\n")
	_, err = kubeletServer(file, []string{"--config-dir", dropins})
	if err == nil || !strings.Contains(err.Error(), "30-bad.conf") || !strings.Contains(err.Error(), "--kubelet-arg config-dir") {
		t.Fatalf("a drop-in of another kind: got %v, want an error naming the file and --kubelet-arg config-dir", err)
	}
}
