package helmcontroller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	// inputsLabel on a release holds a digest of what it was made from
	// (chart archive, values, namespace), so that an unchanged HelmChart
	// costs no upgrade, across restarts too.
	inputsLabel = "kubox.io/helm-inputs"
	// defaultTimeout bounds each Helm operation, as helm's --timeout.
	defaultTimeout = 5 * time.Minute
	// maxHistory is how many revisions of a release are kept, as the helm
	// command keeps by default.
	maxHistory = 10
)

// release installs or upgrades hc's release when its inputs changed.
func (c *controller) release(ctx context.Context, hc *unstructured.Unstructured, spec Spec, cs ConfigSpec, abort bool) outcome {
	name := hc.GetName()
	target := spec.TargetNamespace
	if target == "" {
		target = hc.GetNamespace()
	}
	res := outcome{target: target}
	timeout := defaultTimeout
	if spec.Timeout != "" {
		d, err := time.ParseDuration(spec.Timeout)
		if err != nil {
			res.reason, res.err = "InvalidSpec", fmt.Errorf("spec.timeout %q is not a duration (e.g. 300s, 5m): %v", spec.Timeout, err)
			return res
		}
		timeout = d
	}

	layers, err := c.valuesLayers(ctx, hc, spec, cs)
	if err != nil {
		res.reason, res.err = "InvalidValues", err
		return res
	}
	vals, err := mergeValues(layers, spec.Set)
	if err != nil {
		res.reason, res.err = "InvalidValues", err
		return res
	}
	archive, err := c.chartArchive(ctx, hc, spec)
	if err != nil {
		res.reason, res.err = "ChartUnavailable", err
		return res
	}
	ch, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		res.reason, res.err = "ChartUnavailable", fmt.Errorf("the chart archive does not load: %v", err)
		return res
	}
	res.chartName = ch.Metadata.Name + "-" + ch.Metadata.Version
	digest, err := inputsDigest(archive, vals, target)
	if err != nil {
		res.reason, res.err = "InvalidValues", err
		return res
	}

	// A release left in another namespace by an earlier targetNamespace
	// goes first: a release belongs to one namespace.
	if old := readStatus(hc).TargetNamespace; old != "" && old != target {
		found, err := c.uninstallFrom(ctx, old, name, timeout)
		if err != nil {
			res.reason, res.err = "UninstallFailed", err
			return res
		}
		if found {
			c.recorder.Eventf(hc, corev1.EventTypeNormal, "Uninstalled", "uninstalled release %s/%s: targetNamespace is now %s", old, name, target)
		}
	}

	cfg, err := c.helmConfig(target)
	if err != nil {
		res.reason, res.err = "InstallFailed", err
		return res
	}
	last, err := cfg.Releases.Last(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		res.reason, res.err = "InstallFailed", fmt.Errorf("reading release %s/%s: %v", target, name, err)
		return res
	}
	res.known = true // from here on, the revision deployed is known
	if last != nil && last.Info.Status == release.StatusDeployed && last.Labels[inputsLabel] == digest {
		res.revision = last.Version
		return res // up to date
	}
	if last != nil && stuck(cfg, last) {
		if abort {
			res.reason, res.revision = "Aborted", deployedRevision(cfg, name)
			res.err = fmt.Errorf("release %s/%s is %s and failurePolicy is abort: fix or uninstall it with helm, or set failurePolicy reinstall", target, name, last.Info.Status)
			return res
		}
		c.recorder.Eventf(hc, corev1.EventTypeNormal, "Reinstalling", "release %s/%s is %s: uninstalling it to install it again", target, name, last.Info.Status)
		if _, err := c.uninstallFrom(ctx, target, name, timeout); err != nil {
			res.reason, res.err = "UninstallFailed", err
			return res
		}
		last = nil
	}

	labels := map[string]string{inputsLabel: digest}
	var rel *release.Release
	if last == nil {
		if !spec.CreateNamespace {
			if _, err := c.client.CoreV1().Namespaces().Get(ctx, target, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				res.reason, res.err = "InstallFailed", fmt.Errorf("namespace %s does not exist: create it, or set spec.createNamespace: true", target)
				return res
			}
		}
		in := action.NewInstall(cfg)
		in.Namespace, in.ReleaseName, in.CreateNamespace = target, name, spec.CreateNamespace
		in.Timeout, in.Labels, in.TakeOwnership = timeout, labels, spec.TakeOwnership
		rel, err = in.RunWithContext(ctx, ch, vals)
		res.action, res.reason = "Installed", "InstallFailed"
	} else {
		up := action.NewUpgrade(cfg)
		up.Namespace, up.MaxHistory, up.ResetValues = target, maxHistory, true // exactly these values, not merged with the last ones
		up.Timeout, up.Labels, up.TakeOwnership = timeout, labels, spec.TakeOwnership
		rel, err = up.RunWithContext(ctx, name, ch, vals)
		res.action, res.reason = "Upgraded", "UpgradeFailed"
	}
	if err != nil {
		res.action, res.err = "", err
		res.revision = deployedRevision(cfg, name)
		return res
	}
	res.revision = rel.Version
	return res
}

// stuck tells whether a release cannot be upgraded: an operation that
// never finished, or a failed first install.
func stuck(cfg *action.Configuration, last *release.Release) bool {
	if last.Info.Status.IsPending() {
		return true
	}
	return last.Info.Status == release.StatusFailed && deployedRevision(cfg, last.Name) == 0
}

func deployedRevision(cfg *action.Configuration, name string) int {
	if r, err := cfg.Releases.Deployed(name); err == nil {
		return r.Version
	}
	return 0
}

// inputsDigest identifies what a release is made from.
func inputsDigest(archive []byte, vals map[string]any, target string) (string, error) {
	v, err := json.Marshal(vals) // map keys sorted: a stable encoding
	if err != nil {
		return "", fmt.Errorf("values do not encode: %v", err)
	}
	h := sha256.New()
	for _, part := range [][]byte{archive, v, []byte(target)} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))[:40], nil // a label value holds at most 63
}

// uninstall removes the release of a HelmChart being deleted.
func (c *controller) uninstall(ctx context.Context, hc *unstructured.Unstructured) error {
	var spec Spec
	_ = decodeSpec(hc, &spec) // a broken spec still names its release
	target := readStatus(hc).TargetNamespace
	if target == "" {
		target = spec.TargetNamespace
	}
	if target == "" {
		target = hc.GetNamespace()
	}
	timeout := defaultTimeout
	if d, err := time.ParseDuration(spec.Timeout); err == nil {
		timeout = d
	}
	found, err := c.uninstallFrom(ctx, target, hc.GetName(), timeout)
	if err != nil {
		c.recorder.Event(hc, corev1.EventTypeWarning, "UninstallFailed", err.Error())
		return err
	}
	msg := fmt.Sprintf("uninstalled release %s/%s", target, hc.GetName())
	if !found {
		msg = fmt.Sprintf("release %s/%s was never installed: nothing to uninstall", target, hc.GetName())
	}
	c.recorder.Event(hc, corev1.EventTypeNormal, "Uninstalled", msg)
	c.cfg.Log.Infof("%s/%s: %s", hc.GetNamespace(), hc.GetName(), msg)
	return nil
}

// uninstallFrom uninstalls a release, with its history, and tells whether
// there was one.
func (c *controller) uninstallFrom(ctx context.Context, namespace, name string, timeout time.Duration) (bool, error) {
	cfg, err := c.helmConfig(namespace)
	if err != nil {
		return false, err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = timeout
	un.IgnoreNotFound = true
	type result struct {
		found bool
		err   error
	}
	done := make(chan result, 1)
	go func() { res, err := un.Run(name); done <- result{res != nil, err} }()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if r.err != nil {
		return false, fmt.Errorf("uninstalling release %s/%s: %v", namespace, name, r.err)
	}
	return r.found, nil
}

// helmConfig is Helm's configuration for releases in namespace, stored as
// Secrets there (Helm's default), with a fresh view of the API's kinds so
// that the kinds a chart brought in are known.
func (c *controller) helmConfig(namespace string) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	getter := newRESTGetter(c.cfg.Kubeconfig, c.rest, namespace)
	if err := cfg.Init(getter, namespace, "secret", c.cfg.Log.Debugf); err != nil {
		return nil, err
	}
	return cfg, nil
}
