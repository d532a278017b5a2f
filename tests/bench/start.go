package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// startTimes are seconds from process start; 0 means not measured.
type startTimes struct {
	Readyz     float64 `json:"readyz_s"`
	NodeReady  float64 `json:"node_ready_s"`
	PodRunning float64 `json:"first_pod_running_s"`
	SystemPods float64 `json:"kube_system_ready_s,omitempty"`
	// Phases are kubox's own start-up phases (kubox_startup_phase_seconds
	// on the API server's /metrics), seconds from kubox's start; none for
	// the baseline, whose processes do not report one.
	Phases map[string]float64 `json:"phases,omitempty"`
}

// measureStart starts t and times what a user waits for: the API's
// /readyz, the node Ready (a heartbeat from this start, not an old one), a
// pod created as soon as the API answers reaching Running, and on a first
// start every kube-system pod Ready.
func measureStart(ctx context.Context, t target, opts startOpts, podImage string, first bool, seq int) (startTimes, error) {
	var st startTimes
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	since := func() float64 { return time.Since(t0).Seconds() }
	if err := t.Start(ctx, opts); err != nil {
		return st, err
	}
	fail := func(what string, err error) (startTimes, error) {
		return st, fmt.Errorf("%s: %s not reached: %v\n%s", t.Name(), what, err, t.Failure())
	}
	if err := waitReadyz(ctx, t.APIURL()); err != nil {
		return fail("/readyz", err)
	}
	st.Readyz = since()
	cs, err := waitClient(ctx, t.Kubeconfig(), t.APIURL())
	if err != nil {
		return fail("admin kubeconfig", err)
	}
	errs := make(chan error, 3)
	go func() {
		err := pollUntil(ctx, 50*time.Millisecond, func() (bool, error) { return nodeReadySince(ctx, cs, t0) })
		st.NodeReady = since()
		errs <- wrapErr("node Ready", err)
	}()
	go func() {
		err := firstPod(ctx, cs, podImage, fmt.Sprintf("bench-first-%d", seq))
		st.PodRunning = since()
		errs <- wrapErr("first pod Running", err)
	}()
	n := 2
	if first {
		n++
		go func() {
			err := pollUntil(ctx, 100*time.Millisecond, func() (bool, error) { return systemPodsReady(ctx, cs) })
			st.SystemPods = since()
			errs <- wrapErr("kube-system pods Ready", err)
		}()
	}
	var firstErr error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	if firstErr != nil {
		return fail("start", firstErr)
	}
	st.Phases = startupPhases(ctx, cs)
	return st, nil
}

// startupPhases reads kubox_startup_phase_seconds from the API server's
// /metrics with the admin credentials; nil when there is none.
func startupPhases(ctx context.Context, cs *kubernetes.Clientset) map[string]float64 {
	body, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	return parsePhases(string(body))
}

// parsePhases picks the kubox_startup_phase_seconds samples out of a
// Prometheus text exposition.
func parsePhases(text string) map[string]float64 {
	const metric = "kubox_startup_phase_seconds{"
	var m map[string]float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, metric)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		name := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(l, `phase="`); ok {
				name = strings.TrimSuffix(v, `"`)
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if name == "" || err != nil {
			continue
		}
		if m == nil {
			m = map[string]float64{}
		}
		m[name] = v
	}
	return m
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

var insecureHTTP = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
}

// waitReadyz polls /readyz anonymously, as a load balancer's health check would.
func waitReadyz(ctx context.Context, url string) error {
	return pollUntil(ctx, 25*time.Millisecond, func() (bool, error) {
		resp, err := insecureHTTP.Get(url + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func waitClient(ctx context.Context, kubeconfig, url string) (*kubernetes.Clientset, error) {
	var cs *kubernetes.Clientset
	err := pollUntil(ctx, 25*time.Millisecond, func() (bool, error) {
		if _, err := os.Stat(kubeconfig); err != nil {
			return false, nil
		}
		c, err := clientFor(kubeconfig, url, 50)
		if err != nil {
			return false, nil
		}
		cs = c
		return true, nil
	})
	return cs, err
}

func clientFor(kubeconfig, url string, qps float32) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	// kubox writes a kubeconfig for its own host (127.0.0.1); the bench
	// reaches the node from outside its network namespace.
	cfg.Host = url
	cfg.QPS, cfg.Burst = qps, int(qps)*2
	return kubernetes.NewForConfig(cfg)
}

func pollUntil(ctx context.Context, every time.Duration, f func() (bool, error)) error {
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := sleepCtx(ctx, every); err != nil {
			return err
		}
	}
}

// nodeReadySince: the kubelet reported the node Ready during this start:
// the Ready condition is true and its heartbeat (whole seconds) is not
// older than t0's next second, so a Ready status left over from before a
// restart does not count. The node's Lease would be no better a sign: on
// a first start the kubelet's lease controller runs before the node is
// registered, skips the Lease it cannot give an owner yet, and creates it
// only at its next renewal, 10 s later.
func nodeReadySince(ctx context.Context, cs *kubernetes.Clientset, t0 time.Time) (bool, error) {
	return namedNodeReady(ctx, cs, nodeName, t0)
}

// readySince tells whether node's Ready condition is true with a
// heartbeat from t0 on.
func readySince(node *corev1.Node, t0 time.Time) bool {
	fresh := t0.Truncate(time.Second).Add(time.Second)
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(fresh)
		}
	}
	return false
}

func benchPod(name, image string) *corev1.Pod {
	zero := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "pause", Image: image, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
}

// firstPod creates a pod as soon as the API takes it (the default service
// account comes from the controller manager) and waits for Running.
func firstPod(ctx context.Context, cs *kubernetes.Clientset, image, name string) error {
	pods := cs.CoreV1().Pods("default")
	err := pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		_, err := pods.Create(ctx, benchPod(name, image), metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil
	})
	if err != nil {
		return err
	}
	return pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
}

// systemPodsReady: CoreDNS exists and every kube-system pod is Ready.
func systemPodsReady(ctx context.Context, cs *kubernetes.Clientset) (bool, error) {
	list, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) == 0 {
		return false, nil
	}
	dns := false
	for _, p := range list.Items {
		if p.Labels["k8s-app"] == "kube-dns" {
			dns = true
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, nil
		}
	}
	return dns, nil
}
