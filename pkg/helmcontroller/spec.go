package helmcontroller

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Spec is the part of a HelmChart's spec kubox acts on. The fields that
// shaped k3s' job pod (jobImage, backOffLimit, podSecurityContext,
// securityContext, dockerRegistrySecret), helmVersion and bootstrap are
// accepted by the CRD and ignored: there is no job pod, Helm is v3, and an
// in-process install needs no pod network.
type Spec struct {
	Chart                 string         `json:"chart"`
	ChartContent          string         `json:"chartContent"`
	Repo                  string         `json:"repo"`
	RepoCA                string         `json:"repoCA"`
	RepoCAConfigMap       *localRef      `json:"repoCAConfigMap"`
	Version               string         `json:"version"`
	TargetNamespace       string         `json:"targetNamespace"`
	CreateNamespace       bool           `json:"createNamespace"`
	ValuesContent         string         `json:"valuesContent"`
	ValuesSecrets         []valuesSecret `json:"valuesSecrets"`
	Set                   map[string]any `json:"set"`
	FailurePolicy         string         `json:"failurePolicy"`
	Timeout               string         `json:"timeout"`
	AuthSecret            *localRef      `json:"authSecret"`
	AuthPassCredentials   bool           `json:"authPassCredentials"`
	InsecureSkipTLSVerify bool           `json:"insecureSkipTLSVerify"`
	PlainHTTP             bool           `json:"plainHTTP"`
	TakeOwnership         bool           `json:"takeOwnership"`
}

// ConfigSpec is a HelmChartConfig's spec: more values (and a failure
// policy) for the HelmChart of the same name and namespace.
type ConfigSpec struct {
	ValuesContent string         `json:"valuesContent"`
	ValuesSecrets []valuesSecret `json:"valuesSecrets"`
	FailurePolicy string         `json:"failurePolicy"`
}

type localRef struct {
	Name string `json:"name"`
}

// valuesSecret names a Secret whose keys hold values files.
type valuesSecret struct {
	Name string   `json:"name"`
	Keys []string `json:"keys"`
}

// Failure policies: after a failed install, reinstall uninstalls the
// failed release and tries again with back-off; abort leaves it for the
// user.
const (
	policyReinstall = "reinstall"
	policyAbort     = "abort"
)

// decodeSpec reads the spec of a HelmChart or HelmChartConfig.
func decodeSpec(u *unstructured.Unstructured, into any) error {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, into); err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// valuesLayer is one YAML document of values and where it came from.
type valuesLayer struct {
	Source string
	YAML   string
}

// mergeValues builds the values a release gets: each layer merged over the
// ones before it (maps key by key, anything else replaced, as helm does
// with several -f files), then set over all of them as helm's --set does
// (integers and booleans typed, other strings as strings).
func mergeValues(layers []valuesLayer, set map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for _, l := range layers {
		if strings.TrimSpace(l.YAML) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(l.YAML), &m); err != nil {
			return nil, fmt.Errorf("%s is not a YAML map of values: %v", l.Source, err)
		}
		out = mergeMaps(out, m)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable result when keys overlap (a and a.b)
	for _, k := range keys {
		if err := setValue(out, k, set[k]); err != nil {
			return nil, fmt.Errorf("set %s: %v", k, err)
		}
	}
	return out, nil
}

func mergeMaps(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		if vm, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// setValue applies one `set` entry through helm's own --set parser. Commas
// in a value are escaped so that it stays one value; the strings "true"
// and "false" become booleans, as k3s' controller passes them.
func setValue(dest map[string]any, key string, v any) error {
	switch x := v.(type) {
	case bool:
		return strvals.ParseInto(key+"="+strconv.FormatBool(x), dest)
	case int64:
		return strvals.ParseInto(key+"="+strconv.FormatInt(x, 10), dest)
	case float64:
		return strvals.ParseInto(key+"="+strconv.FormatFloat(x, 'f', -1, 64), dest)
	case string:
		if x == "true" || x == "false" {
			return strvals.ParseInto(key+"="+x, dest)
		}
		return strvals.ParseIntoString(key+"="+strings.ReplaceAll(strings.ReplaceAll(x, `\`, `\\`), ",", `\,`), dest)
	case nil:
		return strvals.ParseInto(key+"=null", dest)
	default:
		return fmt.Errorf("a value must be an integer, a string or a boolean, not %T", v)
	}
}
