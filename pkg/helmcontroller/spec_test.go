package helmcontroller

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestMergeValues: the HelmChartConfig's values win over the HelmChart's,
// maps merge key by key, and set wins over all, typed as helm --set types
// it.
func TestMergeValues(t *testing.T) {
	layers := []valuesLayer{
		{Source: "chart", YAML: "color: blue\nsize: 1\nnested: {a: 1, b: 2}\nlist: [1, 2]\n"},
		{Source: "empty", YAML: "  \n"},
		{Source: "config", YAML: "color: red\nnested: {b: 3, c: 4}\nlist: [9]\n"},
	}
	set := map[string]any{
		"nested.d":  int64(5),
		"flag":      true,
		"word":      "true",
		"text":      "a,b",
		"image.tag": "1.2",
		"size":      "007",
	}
	got, err := mergeValues(layers, set)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"color":  "red",
		"size":   "007", // a string in set stays a string
		"nested": map[string]any{"a": float64(1), "b": float64(3), "c": float64(4), "d": int64(5)},
		"list":   []any{float64(9)},
		"flag":   true,
		"word":   true, // "true" and "false" become booleans, as in k3s
		"text":   "a,b",
		"image":  map[string]any{"tag": "1.2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged values\n got %#v\nwant %#v", got, want)
	}
	if layers[0].YAML == "" || got["nested"].(map[string]any)["a"] != float64(1) {
		t.Error("layers were changed")
	}

	if _, err := mergeValues([]valuesLayer{{Source: "HelmChart spec.valuesContent", YAML: "- a list"}}, nil); err == nil ||
		!strings.Contains(err.Error(), "HelmChart spec.valuesContent is not a YAML map") {
		t.Errorf("a list as values: %v", err)
	}
	if _, err := mergeValues(nil, map[string]any{"x": []any{1}}); err == nil || !strings.Contains(err.Error(), "set x") {
		t.Errorf("a list in set: %v", err)
	}
}

// TestDecodeSpec: a k3s HelmChart's fields decode, the ones kubox ignores
// included.
func TestDecodeSpec(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": "traefik", "namespace": "kube-system"},
		"spec": map[string]any{
			"chart": "traefik", "repo": "https://example.invalid/charts", "version": "1.0.0",
			"targetNamespace": "web", "createNamespace": true, "bootstrap": true, "helmVersion": "v3",
			"jobImage": "x", "backOffLimit": int64(3), "failurePolicy": "abort",
			"set": map[string]any{"a": int64(1), "b": "x", "c": false},
		},
	}}
	var s Spec
	if err := decodeSpec(u, &s); err != nil {
		t.Fatal(err)
	}
	if s.Chart != "traefik" || s.TargetNamespace != "web" || !s.CreateNamespace || s.FailurePolicy != policyAbort || s.Set["a"] != int64(1) || s.Set["c"] != false {
		t.Errorf("decoded %+v", s)
	}
}
