package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func testClaim() *corev1.PersistentVolumeClaim {
	sc := "local-path"
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: "data", Namespace: "apps", UID: "1234-abcd", ResourceVersion: "7",
			Annotations: map[string]string{AnnSelectedNode: "node-a"},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &sc,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Mi"),
			}},
		},
	}
}

func testClass(reclaim *corev1.PersistentVolumeReclaimPolicy) *storagev1.StorageClass {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local-path"},
		Provisioner:       Provisioner,
		ReclaimPolicy:     reclaim,
		VolumeBindingMode: &wffc,
	}
}

func TestPVFor(t *testing.T) {
	pvc := testClaim()
	pv := pvFor(pvc, testClass(nil), "node-a", "/var/lib/kubox/storage")

	if pv.Name != "pvc-1234-abcd" {
		t.Errorf("name %q", pv.Name)
	}
	if pv.Annotations[AnnProvisionedBy] != Provisioner || pv.Annotations[AnnNode] != "node-a" {
		t.Errorf("annotations %v", pv.Annotations)
	}
	if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Mi")) != 0 {
		t.Errorf("capacity %s", q.String())
	}
	if len(pv.Spec.AccessModes) != 1 || pv.Spec.AccessModes[0] != corev1.ReadWriteOncePod {
		t.Errorf("access modes %v", pv.Spec.AccessModes)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("reclaim policy %q, want the default Delete", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if pv.Spec.StorageClassName != "local-path" {
		t.Errorf("storage class %q", pv.Spec.StorageClassName)
	}
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Namespace != "apps" || ref.Name != "data" || ref.UID != "1234-abcd" || ref.Kind != "PersistentVolumeClaim" {
		t.Errorf("claimRef %+v", ref)
	}
	hp := pv.Spec.HostPath
	if hp == nil || hp.Path != "/var/lib/kubox/storage/pvc-1234-abcd_apps_data" || hp.Type == nil || *hp.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("hostPath %+v", hp)
	}
	if got := nodeOf(pv); got != "node-a" {
		t.Errorf("nodeAffinity pins the volume to %q", got)
	}
	if err := checkPath("/var/lib/kubox/storage", volumePath(pv)); err != nil {
		t.Errorf("the path guard refuses the volume's own path: %v", err)
	}

	retain := corev1.PersistentVolumeReclaimRetain
	if pv := pvFor(pvc, testClass(&retain), "node-a", "/s"); pv.Spec.PersistentVolumeReclaimPolicy != retain {
		t.Errorf("reclaim policy %q, want the class's Retain", pv.Spec.PersistentVolumeReclaimPolicy)
	}

	noSize := testClaim()
	noSize.Spec.Resources.Requests = nil
	if err := checkClaim(noSize); err == nil {
		t.Errorf("a claim without a size was accepted")
	}
	if err := checkClaim(pvc); err != nil {
		t.Errorf("checkClaim: %v", err)
	}
}

func TestCheckPath(t *testing.T) {
	dir := "/var/lib/kubox/storage"
	for _, p := range []string{
		"",
		"relative/pvc-1",
		dir,
		dir + "/",
		"/var/lib/kubox",
		"/var/lib/kubox/storage/../server",
		"/var/lib/kubox/storage/pvc-1/../../server",
		"/var/lib/kubox/storage/pvc-1/nested",
		"/var/lib/kubox/storage2/pvc-1",
		"/etc/pvc-1",
		"/var/lib/kubox/storage/other",
		"/var/lib/kubox/storage//pvc-1",
	} {
		if err := checkPath(dir, p); err == nil {
			t.Errorf("checkPath accepted %q", p)
		}
	}
	if err := checkPath(dir+"/", dir+"/pvc-1_ns_name"); err != nil {
		t.Errorf("checkPath refused a volume directory: %v", err)
	}
}

// TestController runs the controller against a fake clientset: a claim
// placed on this node gets a directory and a volume; a claim placed
// elsewhere gets nothing; a released Delete volume loses both; a Retain
// one keeps them.
func TestController(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "storage")
	pvc := testClaim()
	other := testClaim()
	other.Name, other.UID = "elsewhere", "9999"
	other.Annotations = map[string]string{AnnSelectedNode: "node-b"}
	client := fake.NewClientset(testClass(nil), pvc, other)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, Config{NodeName: "node-a", StorageDir: dir}, client) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	var pv *corev1.PersistentVolume
	poll(t, "the volume", func() bool {
		var err error
		pv, err = client.CoreV1().PersistentVolumes().Get(ctx, "pvc-1234-abcd", metav1.GetOptions{})
		return err == nil
	})
	path := filepath.Join(dir, "pvc-1234-abcd_apps_data")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o777 {
		t.Fatalf("volume directory: %v %v", st, err)
	}
	if _, err := client.CoreV1().PersistentVolumes().Get(ctx, "pvc-9999", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a claim of another node was provisioned here: %v", err)
	}

	// Released with Delete: directory and volume go.
	pv.Status.Phase = corev1.VolumeReleased
	if _, err := client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the volume to go", func() bool {
		_, err := client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("volume directory still there: %v", err)
	}

	// Released with Retain: left alone.
	kept := pvFor(other, testClass(nil), "node-a", dir)
	kept.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	keptPath := kept.Spec.HostPath.Path
	if err := makeDir(keptPath); err != nil {
		t.Fatal(err)
	}
	kept.Status.Phase = corev1.VolumeReleased
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, kept, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := client.CoreV1().PersistentVolumes().Get(ctx, kept.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("a Retain volume was deleted: %v", err)
	}
	if _, err := os.Stat(keptPath); err != nil {
		t.Errorf("a Retain volume's directory was removed: %v", err)
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
