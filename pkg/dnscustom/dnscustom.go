// Package dnscustom makes edits to the coredns-custom ConfigMap take effect
// on their own. CoreDNS's reload plugin watches only the Corefile, not the
// files it imports, so a change to coredns-custom would otherwise wait for
// someone to restart CoreDNS: kubox records a hash of the ConfigMap in the
// coredns Deployment's pod template, and the Deployment rolls (new pod Ready
// before the old one goes, so DNS stays up).
package dnscustom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Names of the objects involved.
const (
	Namespace  = "kube-system"
	ConfigMap  = "coredns-custom"
	Deployment = "coredns"
	// HashAnnotation on the pod template holds the hash of the
	// ConfigMap the running pods were started with.
	HashAnnotation = "kubox.io/coredns-custom-hash"
	fieldManager   = "kubox-dnscustom"
)

// Logger receives what the controller does.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Run keeps the coredns Deployment's template hash in step with the
// coredns-custom ConfigMap until ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, log Logger) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 30*time.Second,
		informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMap).String()
		}))
	inf := factory.Core().V1().ConfigMaps()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, n any) { poke(n) },
		DeleteFunc: poke,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return nil
	}
	// The Deployment may not exist yet when kubox starts, and is not
	// watched: a periodic check covers it.
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		cm, err := inf.Lister().ConfigMaps(Namespace).Get(ConfigMap)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := sync(ctx, client, Hash(cm), log); err != nil && ctx.Err() == nil {
			log.Warnf("cannot apply the %s ConfigMap to CoreDNS: %v", ConfigMap, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-tick.C:
		}
	}
}

// Hash identifies a ConfigMap's content; "" for none.
func Hash(cm *corev1.ConfigMap) string {
	if cm == nil || len(cm.Data)+len(cm.BinaryData) == 0 {
		return ""
	}
	keys := make([]string, 0, len(cm.Data)+len(cm.BinaryData))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	for k := range cm.BinaryData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		v, ok := cm.Data[k]
		if !ok {
			v = string(cm.BinaryData[k])
		}
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(v), v)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// sync records want in the Deployment's template when it differs; a
// change there rolls the Deployment.
func sync(ctx context.Context, client kubernetes.Interface, want string, log Logger) error {
	d, err := client.AppsV1().Deployments(Namespace).Get(ctx, Deployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Spec.Template.Annotations[HashAnnotation] == want {
		return nil
	}
	var value any = want
	if want == "" {
		value = nil // a merge patch removes the annotation
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{HashAnnotation: value}}}}})
	if err != nil {
		return err
	}
	if _, err := client.AppsV1().Deployments(Namespace).Patch(ctx, Deployment, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	log.Infof("%s changed: rolling CoreDNS to load it", ConfigMap)
	return nil
}
