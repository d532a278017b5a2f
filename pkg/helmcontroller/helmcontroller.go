// Package helmcontroller installs, upgrades and uninstalls Helm releases
// as HelmChart objects (helm.cattle.io/v1, as in k3s) ask, with the Helm
// library inside kubox: no job pod and no helm image. A HelmChartConfig of
// the same name adds values. Deleting a HelmChart uninstalls its release
// (a finalizer holds the object until then). Of several servers, the one
// holding a Lease acts. This package is the only importer of Helm.
package helmcontroller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/leader"
	"github.com/kubox-io/kubox/pkg/logging"
)

// The resources this controller serves.
var (
	chartsGVR  = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmcharts"}
	configsGVR = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmchartconfigs"}
)

const (
	// finalizer holds a HelmChart until its release is uninstalled.
	finalizer = "kubox.io/helm-uninstall"
	// leaseName is the Lease the acting server holds.
	leaseName = "kubox-helm-controller"
	// component names the controller in logs and Events.
	component = "helm-controller"
)

// Config is what the controller is built from.
type Config struct {
	Kubeconfig string // an admin kubeconfig
	// HelmDir keeps what charts from repositories need: Helm's repository
	// cache and configuration, and CA files.
	HelmDir  string
	Election leader.Election
	Log      *logging.Logger
}

// Run reconciles HelmCharts until ctx ends, while this server holds the
// lease.
func Run(ctx context.Context, cfg Config) error {
	return cfg.Election.Wrap(leaseName, func(ctx context.Context) error { return run(ctx, cfg) })(ctx)
}

type controller struct {
	cfg      Config
	rest     *rest.Config
	client   kubernetes.Interface
	dynamic  dynamic.Interface
	charts   cache.Indexer
	configs  cache.Indexer
	recorder record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[string]
}

func run(ctx context.Context, cfg Config) error {
	rc, err := kubeclient.Config(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	// The definitions arrive through the deploy controller: wait for them
	// rather than let the informers log every failed list.
	if err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(configsGVR).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			_, err = dyn.Resource(chartsGVR).List(ctx, metav1.ListOptions{Limit: 1})
		}
		return err == nil, nil
	}); err != nil {
		return nil // ctx ended
	}

	recorder, stopEvents := kubeclient.Recorder(ctx, client, "kubox-"+component, "")
	defer stopEvents()

	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	chartInf := factory.ForResource(chartsGVR).Informer()
	configInf := factory.ForResource(configsGVR).Informer()
	c := &controller{
		cfg:      cfg,
		rest:     rc,
		client:   client,
		dynamic:  dyn,
		charts:   chartInf.GetIndexer(),
		configs:  configInf.GetIndexer(),
		recorder: recorder,
		// A failed release is tried again after 2 s, doubling to 5 min.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](2*time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: component}),
	}
	defer c.queue.ShutDown()

	// Only changes a release depends on count: not the controller's own
	// status writes.
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			if changed(old, cur) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: c.enqueue,
	}
	if _, err := chartInf.AddEventHandler(handler); err != nil {
		return err
	}
	if _, err := configInf.AddEventHandler(handler); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), chartInf.HasSynced, configInf.HasSynced) {
		return nil // the wait ends early only when ctx does
	}
	cfg.Log.Infof("reconciling HelmCharts")
	go wait.UntilWithContext(ctx, c.work, time.Second)
	<-ctx.Done()
	return nil
}

// enqueue queues the HelmChart an object is, or configures (a
// HelmChartConfig has its HelmChart's name and namespace).
func (c *controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// changed tells whether an update touched more than status.
func changed(old, cur any) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	n, ok2 := cur.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	return o.GetGeneration() != n.GetGeneration() ||
		(o.GetDeletionTimestamp() == nil) != (n.GetDeletionTimestamp() == nil) ||
		!slices.Equal(o.GetFinalizers(), n.GetFinalizers())
}

func (c *controller) work(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		retry, err := c.sync(ctx, key)
		switch {
		case apierrors.IsConflict(err):
			// The cache had not seen the controller's last write yet.
			c.cfg.Log.Debugf("%s: %v (retrying)", key, err)
			c.queue.AddRateLimited(key)
		case err != nil && retry:
			c.cfg.Log.Errorf("%s: %v (retrying)", key, err)
			c.queue.AddRateLimited(key)
		case err != nil:
			c.cfg.Log.Errorf("%s: %v", key, err)
			c.queue.Forget(key)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// sync brings one HelmChart's release in line with it. retry says whether
// an error is worth another try without a change to the HelmChart.
func (c *controller) sync(ctx context.Context, key string) (retry bool, err error) {
	obj, exists, err := c.charts.GetByKey(key)
	if err != nil || !exists {
		return false, err // gone: the finalizer saw to its release
	}
	hc := obj.(*unstructured.Unstructured).DeepCopy()
	charts := c.dynamic.Resource(chartsGVR).Namespace(hc.GetNamespace())
	if hc.GetDeletionTimestamp() != nil {
		if !slices.Contains(hc.GetFinalizers(), finalizer) {
			return false, nil
		}
		if err := c.uninstall(ctx, hc); err != nil {
			return true, err
		}
		hc.SetFinalizers(slices.DeleteFunc(hc.GetFinalizers(), func(f string) bool { return f == finalizer }))
		_, err := charts.Update(ctx, hc, metav1.UpdateOptions{})
		return !apierrors.IsNotFound(err), ignoreNotFound(err)
	}
	if !slices.Contains(hc.GetFinalizers(), finalizer) {
		hc.SetFinalizers(append(hc.GetFinalizers(), finalizer))
		if hc, err = charts.Update(ctx, hc, metav1.UpdateOptions{}); err != nil {
			return true, ignoreNotFound(err)
		}
	}

	var spec Spec
	if err := decodeSpec(hc, &spec); err != nil {
		return false, c.report(ctx, hc, outcome{reason: "InvalidSpec", err: err})
	}
	var cs ConfigSpec
	if obj, ok, _ := c.configs.GetByKey(key); ok {
		if err := decodeSpec(obj.(*unstructured.Unstructured), &cs); err != nil {
			return false, c.report(ctx, hc, outcome{reason: "InvalidSpec", err: err})
		}
	}
	policy := spec.FailurePolicy
	if cs.FailurePolicy != "" {
		policy = cs.FailurePolicy
	}
	res := c.release(ctx, hc, spec, cs, policy == policyAbort)
	if err := c.report(ctx, hc, res); err != nil {
		return true, err
	}
	if res.err != nil {
		return policy != policyAbort, res.err
	}
	return false, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// outcome is what one attempt at a release did.
type outcome struct {
	action    string // "Installed", "Upgraded", or "" when up to date
	reason    string // why it failed
	err       error
	target    string // the release's namespace
	revision  int    // the release's revision now deployed, 0 if none
	known     bool   // whether revision was read from the release (else the status keeps its own)
	chartName string // name-version of the chart
}

// report writes an outcome into the HelmChart's status and Events.
func (c *controller) report(ctx context.Context, hc *unstructured.Unstructured, res outcome) error {
	st := readStatus(hc)
	before := st.clone()
	st.ObservedGeneration = hc.GetGeneration()
	now := metav1.Now()
	if res.err != nil {
		st.setCondition("Failed", metav1.ConditionTrue, res.reason, res.err.Error(), now)
		if res.known {
			st.Revision = int64(res.revision)
		}
		if st.Revision == 0 {
			st.setCondition("Installed", metav1.ConditionFalse, res.reason, "no revision of the release is deployed", now)
		}
		c.recorder.Event(hc, corev1.EventTypeWarning, res.reason, res.err.Error())
	} else {
		msg := fmt.Sprintf("chart %s, release %s/%s revision %d", res.chartName, res.target, hc.GetName(), res.revision)
		reason := res.action
		if reason == "" {
			reason = "UpToDate"
		}
		st.TargetNamespace, st.Revision = res.target, int64(res.revision)
		if cur := st.condition("Installed"); res.action == "" && cur != nil && cur.Status == metav1.ConditionTrue {
			reason, msg = cur.Reason, cur.Message // nothing happened: keep what did
		}
		st.setCondition("Installed", metav1.ConditionTrue, reason, msg, now)
		st.setCondition("Failed", metav1.ConditionFalse, reason, "", now)
		if res.action != "" {
			c.recorder.Event(hc, corev1.EventTypeNormal, res.action, msg)
			c.cfg.Log.Infof("%s/%s: %s %s", hc.GetNamespace(), hc.GetName(), res.action, msg)
		}
	}
	if st.equal(before) {
		return nil
	}
	if err := unstructured.SetNestedField(hc.Object, st.toUnstructured(), "status"); err != nil {
		return err
	}
	_, err := c.dynamic.Resource(chartsGVR).Namespace(hc.GetNamespace()).UpdateStatus(ctx, hc, metav1.UpdateOptions{})
	return ignoreNotFound(err)
}
