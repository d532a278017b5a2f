// Package storage has one job: local-path volumes for the node it runs on.
// The node agent provisions a directory and a PersistentVolume for every
// claim of a kubox.io/local-path StorageClass that the scheduler placed on
// this node, and removes both once a Delete volume is released. No helper
// pod is involved: the agent already runs as root on the node.
package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

const (
	// Provisioner is the StorageClass provisioner this package serves.
	Provisioner = "kubox.io/local-path"
	// AnnSelectedNode is set on a claim by the scheduler under
	// WaitForFirstConsumer.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnProvisionedBy marks the volumes a provisioner made.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnNode records the node whose disk holds a volume.
	AnnNode = "kubox.io/local-path-node"

	annBetaStorageClass = "volume.beta.kubernetes.io/storage-class"
	hostnameLabel       = "kubernetes.io/hostname"
	resync              = time.Minute
)

// Logger is where the controller reports what it does.
type Logger interface {
	Infof(string, ...any)
	Errorf(string, ...any)
}

// Config says which node this is, where its volumes live and how to reach
// the API.
type Config struct {
	NodeName   string
	StorageDir string
	Kubeconfig string
	Log        Logger
}

// Run provisions and reclaims local-path volumes of cfg.NodeName until ctx
// ends.
func Run(ctx context.Context, cfg Config) error {
	client, err := kubeclient.New(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	return run(ctx, cfg, client)
}

type nopLog struct{}

func (nopLog) Infof(string, ...any)  {}
func (nopLog) Errorf(string, ...any) {}

type controller struct {
	cfg      Config
	dir      string
	client   kubernetes.Interface
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	recorder record.EventRecorder
	claimQ   workqueue.TypedRateLimitingInterface[string]
	volumeQ  workqueue.TypedRateLimitingInterface[string]
}

func run(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	if cfg.Log == nil {
		cfg.Log = nopLog{}
	}
	if cfg.NodeName == "" || !filepath.IsAbs(cfg.StorageDir) {
		return fmt.Errorf("local-path storage needs a node name and an absolute directory (got %q, %q)", cfg.NodeName, cfg.StorageDir)
	}
	dir := filepath.Clean(cfg.StorageDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}

	recorder, stopEvents := kubeclient.Recorder(ctx, client, "kubox-local-path", cfg.NodeName)
	defer stopEvents()

	factory := informers.NewSharedInformerFactory(client, resync)
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	pvInf := factory.Core().V1().PersistentVolumes()
	scInf := factory.Storage().V1().StorageClasses()
	c := &controller{
		cfg:      cfg,
		dir:      dir,
		client:   client,
		claims:   pvcInf.Lister(),
		volumes:  pvInf.Lister(),
		classes:  scInf.Lister(),
		recorder: recorder,
		claimQ: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-path-claims"}),
		volumeQ: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-path-volumes"}),
	}
	defer c.claimQ.ShutDown()
	defer c.volumeQ.ShutDown()

	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueClaim,
		UpdateFunc: func(_, obj any) { c.enqueueClaim(obj) },
	}); err != nil {
		return err
	}
	if _, err := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueVolume,
		UpdateFunc: func(_, obj any) { c.enqueueVolume(obj) },
	}); err != nil {
		return err
	}
	scInf.Informer() // registered before Start, so the lister is fed

	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot sync the %v cache", typ)
		}
	}
	cfg.Log.Infof("local-path volumes of node %s go to %s", cfg.NodeName, dir)

	go wait.UntilWithContext(ctx, func(ctx context.Context) { c.work(ctx, c.claimQ, c.syncClaim) }, time.Second)
	go wait.UntilWithContext(ctx, func(ctx context.Context) { c.work(ctx, c.volumeQ, c.syncVolume) }, time.Second)
	<-ctx.Done()
	return nil
}

func (c *controller) enqueueClaim(obj any) {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || pvc.Spec.VolumeName != "" || pvc.Annotations[AnnSelectedNode] != c.cfg.NodeName {
		return
	}
	c.claimQ.Add(pvc.Namespace + "/" + pvc.Name)
}

func (c *controller) enqueueVolume(obj any) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || pv.Annotations[AnnProvisionedBy] != Provisioner || nodeOf(pv) != c.cfg.NodeName {
		return
	}
	c.volumeQ.Add(pv.Name)
}

// work drains q until it shuts down; a failed key comes back with backoff.
func (c *controller) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		if err := sync(ctx, key); err != nil {
			if ctx.Err() == nil {
				c.cfg.Log.Errorf("local-path %s: %v (retrying)", key, err)
			}
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// syncClaim provisions a volume for one claim placed on this node.
func (c *controller) syncClaim(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil || pvc.Annotations[AnnSelectedNode] != c.cfg.NodeName {
		return nil
	}
	scName := classOf(pvc)
	if scName == "" {
		return nil
	}
	sc, err := c.classes.Get(scName)
	if apierrors.IsNotFound(err) {
		return nil // not ours; the resync looks again should it appear
	} else if err != nil {
		return err
	}
	if sc.Provisioner != Provisioner {
		return nil
	}
	pvName := "pvc-" + string(pvc.UID)
	if _, err := c.volumes.Get(pvName); err == nil {
		return nil
	}
	if err := checkClaim(pvc); err != nil {
		c.recorder.Event(pvc, corev1.EventTypeWarning, "ProvisioningFailed", err.Error())
		return err
	}
	pv := pvFor(pvc, sc, c.cfg.NodeName, c.dir)
	path := pv.Spec.HostPath.Path
	if err := makeDir(path); err != nil {
		c.recorder.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "cannot create %s on node %s: %v", path, c.cfg.NodeName, err)
		return err
	}
	if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		c.recorder.Eventf(pvc, corev1.EventTypeWarning, "ProvisioningFailed", "cannot create volume %s: %v", pv.Name, err)
		return err
	}
	c.recorder.Eventf(pvc, corev1.EventTypeNormal, "ProvisioningSucceeded", "provisioned volume %s at %s on node %s", pv.Name, path, c.cfg.NodeName)
	c.cfg.Log.Infof("provisioned %s for %s at %s", pv.Name, key, path)
	return nil
}

// syncVolume reclaims a released Delete volume of this node.
func (c *controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if pv.Annotations[AnnProvisionedBy] != Provisioner || nodeOf(pv) != c.cfg.NodeName || pv.DeletionTimestamp != nil {
		return nil
	}
	if pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return nil
	}
	path := volumePath(pv)
	if err := checkPath(c.dir, path); err != nil {
		c.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "refusing to delete %q: %v", path, err)
		return err
	}
	if err := os.RemoveAll(path); err != nil {
		c.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "cannot remove %s: %v", path, err)
		return err
	}
	uid := pv.UID
	err = c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		c.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "cannot delete volume: %v", err)
		return err
	}
	c.cfg.Log.Infof("deleted released volume %s and %s", pv.Name, path)
	return nil
}

// classOf is the claim's StorageClass name, from the field or the legacy
// annotation.
func classOf(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return pvc.Annotations[annBetaStorageClass]
}

// checkClaim rejects a claim pvFor cannot serve: one without a size, or
// whose names would not make a single directory.
func checkClaim(pvc *corev1.PersistentVolumeClaim) error {
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || size.IsZero() {
		return errors.New("the claim requests no storage size")
	}
	for _, s := range []string{pvc.Namespace, pvc.Name, string(pvc.UID)} {
		if s == "" || strings.ContainsAny(s, "/\x00") || s == "." || s == ".." {
			return fmt.Errorf("claim %s/%s has an unusable name or UID", pvc.Namespace, pvc.Name)
		}
	}
	return nil
}

// pvFor builds the volume that satisfies pvc (accepted by checkClaim) on
// node, in a directory of its own below dir.
func pvFor(pvc *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass, node, dir string) *corev1.PersistentVolume {
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	name := "pvc-" + string(pvc.UID)
	path := filepath.Join(dir, fmt.Sprintf("%s_%s_%s", name, pvc.Namespace, pvc.Name))
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	modes := pvc.Spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	var volumeMode *corev1.PersistentVolumeMode
	if pvc.Spec.VolumeMode != nil {
		m := *pvc.Spec.VolumeMode
		volumeMode = &m
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				AnnProvisionedBy: Provisioner,
				AnnNode:          node,
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()},
			AccessModes:                   append([]corev1.PersistentVolumeAccessMode(nil), modes...),
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			MountOptions:                  append([]string(nil), sc.MountOptions...),
			VolumeMode:                    volumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind:            "PersistentVolumeClaim",
				APIVersion:      "v1",
				Namespace:       pvc.Namespace,
				Name:            pvc.Name,
				UID:             pvc.UID,
				ResourceVersion: pvc.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &dirOrCreate},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
				}}}},
			}},
		},
	}
}

// nodeOf is the node a volume's nodeAffinity pins it to, "" if none.
func nodeOf(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, req := range term.MatchExpressions {
			if req.Key == hostnameLabel && req.Operator == corev1.NodeSelectorOpIn && len(req.Values) == 1 {
				return req.Values[0]
			}
		}
	}
	return ""
}

// volumePath is where a volume's data lies on the node.
func volumePath(pv *corev1.PersistentVolume) string {
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path
	}
	return ""
}

// checkPath accepts only a volume directory directly below dir: an
// absolute, clean path whose parent is dir and whose name is one this
// package makes. Anything else (dir itself, "..", another tree, a volume
// edited to point elsewhere) is refused, so reclaiming never removes more
// than one volume's directory.
func checkPath(dir, path string) error {
	if path == "" || !filepath.IsAbs(path) {
		return fmt.Errorf("not an absolute path")
	}
	if filepath.Clean(path) != path {
		return fmt.Errorf("not a clean path")
	}
	if filepath.Dir(path) != filepath.Clean(dir) {
		return fmt.Errorf("not directly below %s", dir)
	}
	if base := filepath.Base(path); !strings.HasPrefix(base, "pvc-") || base == "." || base == ".." {
		return fmt.Errorf("not a volume directory")
	}
	return nil
}

// makeDir creates a volume's directory writable by any user in a pod (the
// umask is bypassed by the explicit chmod).
func makeDir(path string) error {
	if err := os.MkdirAll(path, 0o777); err != nil {
		return err
	}
	return os.Chmod(path, 0o777)
}
