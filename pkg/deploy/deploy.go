// Package deploy keeps the cluster in step with a directory of manifests:
// every *.yaml, *.yml or *.json file in it is applied with server-side apply
// within seconds of appearing or changing, the objects a file no longer
// holds (or a deleted file held) are deleted, a `<name>.skip` file hands
// `<name>` back to the user, and a broken file is reported by name and line
// without holding up the others. kubox's add-ons arrive the same way. A
// HelmChart may name a chart archive lying beside its manifest, which is
// then carried in the object (see inlineCharts).
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// FieldManager owns the fields kubox applies.
const FieldManager = "kubox-deploy"

// Labels and annotations kubox puts on what it applies.
const (
	ManagedLabel   = "kubox.io/managed-by"
	FileAnnotation = "kubox.io/manifest-file"
	stateName      = "kubox-manifests" // ConfigMap in kube-system: file → objects
)

// Logger receives progress and problems.
type Logger interface {
	Infof(format string, args ...any)
	Errorf(format string, args ...any)
}

// Controller applies a manifests directory.
type Controller struct {
	Dir        string
	Kubeconfig string
	Interval   time.Duration // how often the directory is read; default 2s
	Log        Logger

	client  kubernetes.Interface
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	applied map[string]fileState // by file name
}

// objRef identifies one applied object.
type objRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

type fileState struct {
	Hash    string   `json:"hash"`
	Objects []objRef `json:"objects"`
	Charts  []string `json:"charts,omitempty"` // chart archives carried in its HelmCharts
}

// Run applies the directory until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	rc, err := kubeclient.Config(c.Kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 50, 100
	if c.client, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	if c.dynamic, err = dynamic.NewForConfig(rc); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	c.applied = c.loadState(ctx)
	interval := c.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	failedHash := map[string]string{}
	for {
		c.sync(ctx, failedHash)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Managed lists the manifest files kubox applies now (skip files honoured).
func Managed(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".skip"); ok {
			skip[n] = true
		}
	}
	out := map[string]string{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || skip[n] {
			continue
		}
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json") {
			out[n] = filepath.Join(dir, n)
		}
	}
	return out, nil
}

func (c *Controller) sync(ctx context.Context, failedHash map[string]string) {
	files, err := Managed(c.Dir)
	if err != nil {
		c.Log.Errorf("reading %s: %v", c.Dir, err)
		return
	}
	skipped := skippedNames(c.Dir)
	changed := false
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names) // a stable order: CRDs in 00-… files go first
	for _, name := range names {
		data, err := os.ReadFile(files[name])
		if err != nil {
			continue
		}
		hash := fileHash(c.Dir, data, c.applied[name].Charts)
		if c.applied[name].Hash == hash || failedHash[name] == hash+"/final" {
			continue
		}
		objs, err := parse(name, data)
		var charts []string
		if err == nil {
			charts, err = inlineCharts(c.Dir, objs)
		}
		if err == nil {
			var refs []objRef
			refs, err = c.apply(ctx, name, objs)
			if err == nil {
				c.prune(ctx, c.applied[name].Objects, refs)
				c.applied[name] = fileState{Hash: fileHash(c.Dir, data, charts), Objects: refs, Charts: charts}
				changed = true
				delete(failedHash, name)
				c.Log.Infof("applied %s (%d objects)", files[name], len(refs))
				continue
			}
		}
		if failedHash[name] != hash && failedHash[name] != hash+"/final" {
			c.Log.Errorf("cannot apply %s: %v", files[name], err)
			c.event(ctx, name, err)
		}
		// A file that does not parse will not parse until it changes; an
		// apply error (a CRD not yet established) is retried.
		if errors.Is(err, errParse) {
			failedHash[name] = hash + "/final"
		} else {
			failedHash[name] = hash
		}
	}
	// Files that went away: delete what they created, unless the user
	// took them over with a .skip file.
	for name, st := range c.applied {
		if _, ok := files[name]; ok || skipped[name] {
			continue
		}
		c.prune(ctx, st.Objects, nil)
		delete(c.applied, name)
		changed = true
		c.Log.Infof("deleted the objects of removed manifest %s", name)
	}
	if changed {
		c.saveState(ctx)
	}
}

func skippedNames(dir string) map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".skip"); ok {
			out[n] = true
		}
	}
	return out
}

var errParse = errors.New("parse error")

// parse splits a file into objects; errors carry the line they start at.
func parse(name string, data []byte) ([]*unstructured.Unstructured, error) {
	if strings.HasSuffix(name, ".json") {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("%w: %v", errParse, err)
		}
		return []*unstructured.Unstructured{u}, nil
	}
	var objs []*unstructured.Unstructured
	for _, d := range splitDocuments(data) {
		if len(bytes.TrimSpace(stripComments(d.body))) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(d.body, &m); err != nil {
			return nil, fmt.Errorf("%w: document starting at line %d: %v", errParse, d.line, err)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%w: document starting at line %d: needs apiVersion and kind", errParse, d.line)
		}
		if u.IsList() {
			items, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("%w: document starting at line %d: %v", errParse, d.line, err)
			}
			for i := range items.Items {
				objs = append(objs, &items.Items[i])
			}
			continue
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("%w: document starting at line %d: needs metadata.name", errParse, d.line)
		}
		objs = append(objs, u)
	}
	return objs, nil
}

type document struct {
	line int // where the document starts in the file, from 1
	body []byte
}

// splitDocuments splits YAML at "---" lines, keeping each document's
// first line so that errors can point into the file.
func splitDocuments(data []byte) []document {
	var docs []document
	cur := document{line: 1}
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(l, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, cur)
			cur = document{line: i + 2}
			continue
		}
		cur.body = append(cur.body, l...)
	}
	return append(docs, cur)
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			out.Write(l)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func (c *Controller) apply(ctx context.Context, file string, objs []*unstructured.Unstructured) ([]objRef, error) {
	var refs []objRef
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			c.mapper.Reset() // a CRD applied just now may be known next time
			return nil, fmt.Errorf("%s %s: unknown kind: %v", gvk.Kind, u.GetName(), err)
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ManagedLabel] = FieldManager
		u.SetLabels(labels)
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[FileAnnotation] = file
		u.SetAnnotations(ann)
		var ri dynamic.ResourceInterface = c.dynamic.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				u.SetNamespace(metav1.NamespaceDefault)
			}
			ri = c.dynamic.Resource(mapping.Resource).Namespace(u.GetNamespace())
		} else {
			u.SetNamespace("")
		}
		body, err := u.MarshalJSON()
		if err != nil {
			return nil, err
		}
		force := true
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return nil, fmt.Errorf("%s %s: %v", gvk.Kind, u.GetName(), err)
		}
		refs = append(refs, objRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()})
	}
	return refs, nil
}

// prune deletes the objects in old that are not in keep.
func (c *Controller) prune(ctx context.Context, old, keep []objRef) {
	kept := map[objRef]bool{}
	for _, r := range keep {
		kept[r] = true
	}
	for _, r := range old {
		if kept[r] {
			continue
		}
		mapping, err := c.mapper.RESTMapping(schema.GroupKind{Group: r.Group, Kind: r.Kind}, r.Version)
		if err != nil {
			continue // its kind is gone, and with it the object
		}
		var ri dynamic.ResourceInterface = c.dynamic.Resource(mapping.Resource)
		if r.Namespace != "" {
			ri = c.dynamic.Resource(mapping.Resource).Namespace(r.Namespace)
		}
		policy := metav1.DeletePropagationBackground
		if err := ri.Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
			c.Log.Errorf("deleting %s %s: %v", r.Kind, r.Name, err)
		}
	}
}

// The state lives in the cluster, beside the objects it describes.
func (c *Controller) loadState(ctx context.Context) map[string]fileState {
	st := map[string]fileState{}
	cm, err := c.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, stateName, metav1.GetOptions{})
	if err != nil {
		return st
	}
	for name, v := range cm.Data {
		var fs fileState
		if json.Unmarshal([]byte(v), &fs) == nil {
			st[unkey(name)] = fs
		}
	}
	return st
}

func (c *Controller) saveState(ctx context.Context) {
	data := map[string]string{}
	for name, fs := range c.applied {
		b, _ := json.Marshal(fs)
		data[key(name)] = string(b)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: stateName, Namespace: metav1.NamespaceSystem, Labels: map[string]string{ManagedLabel: FieldManager}},
		Data:       data,
	}
	cms := c.client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		if err != nil {
			c.Log.Errorf("saving manifest state: %v", err)
		}
	} else if err != nil {
		c.Log.Errorf("saving manifest state: %v", err)
	}
}

// ConfigMap keys allow [-._a-zA-Z0-9]: file names mostly fit; escape the rest.
func key(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == '-' || r == '.' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "_x%04x", r)
		}
	}
	return b.String()
}

func unkey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if strings.HasPrefix(k[i:], "_x") && i+6 <= len(k) {
			var r rune
			if _, err := fmt.Sscanf(k[i+2:i+6], "%04x", &r); err == nil {
				b.WriteRune(r)
				i += 5
				continue
			}
		}
		b.WriteByte(k[i])
	}
	return b.String()
}

// event records a problem with a manifest on the state ConfigMap, so that
// `kubectl get events -n kube-system` shows it.
func (c *Controller) event(ctx context.Context, file string, err error) {
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: stateName + ".", Namespace: metav1.NamespaceSystem},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Namespace: metav1.NamespaceSystem, Name: stateName, APIVersion: "v1"},
		Reason:         "ManifestFailed",
		Message:        fmt.Sprintf("%s: %v", filepath.Join(c.Dir, file), err),
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: FieldManager},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	_, _ = c.client.CoreV1().Events(metav1.NamespaceSystem).Create(ctx, ev, metav1.CreateOptions{})
}
