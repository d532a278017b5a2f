package helmcontroller

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/registry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// chartArchive returns the chart's .tgz: chartContent when set, else the
// chart fetched by Helm's own code from spec.repo or a URL.
func (c *controller) chartArchive(ctx context.Context, hc *unstructured.Unstructured, spec Spec) ([]byte, error) {
	if spec.ChartContent != "" {
		data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(spec.ChartContent), ""))
		if err != nil {
			return nil, fmt.Errorf("spec.chartContent is not base64: %v", err)
		}
		return data, nil
	}
	if spec.Chart == "" {
		return nil, fmt.Errorf("set spec.chart (a chart name with spec.repo, or a URL) or spec.chartContent (a base64 .tgz)")
	}
	if spec.Repo == "" && strings.HasSuffix(spec.Chart, ".tgz") && !strings.Contains(spec.Chart, "://") {
		return nil, fmt.Errorf("spec.chart %q names a file: put it beside the HelmChart's manifest in the server's manifests directory (kubox then carries it in chartContent), or set spec.chartContent", spec.Chart)
	}
	opts := action.ChartPathOptions{
		RepoURL:               spec.Repo,
		Version:               spec.Version,
		InsecureSkipTLSverify: spec.InsecureSkipTLSVerify,
		PlainHTTP:             spec.PlainHTTP,
		PassCredentialsAll:    spec.AuthPassCredentials,
	}
	if spec.AuthSecret != nil && spec.AuthSecret.Name != "" {
		s, err := c.client.CoreV1().Secrets(hc.GetNamespace()).Get(ctx, spec.AuthSecret.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("spec.authSecret: %v", err)
		}
		opts.Username, opts.Password = string(s.Data["username"]), string(s.Data["password"])
	}
	ca, err := c.repoCA(ctx, hc, spec)
	if err != nil {
		return nil, err
	}
	if ca != "" {
		opts.CaFile = filepath.Join(c.cfg.HelmDir, "ca", hc.GetNamespace()+"_"+hc.GetName()+".pem")
		if err := atomicfile.Write(opts.CaFile, []byte(ca), 0o600); err != nil {
			return nil, err
		}
	}
	settings := &cli.EnvSettings{
		RepositoryConfig: filepath.Join(c.cfg.HelmDir, "repositories.yaml"),
		RepositoryCache:  filepath.Join(c.cfg.HelmDir, "cache"),
		RegistryConfig:   filepath.Join(c.cfg.HelmDir, "registry.json"),
	}
	regOpts := []registry.ClientOption{registry.ClientOptWriter(io.Discard), registry.ClientOptCredentialsFile(settings.RegistryConfig)}
	if spec.PlainHTTP {
		regOpts = append(regOpts, registry.ClientOptPlainHTTP())
	}
	reg, err := registry.NewClient(regOpts...)
	if err != nil {
		return nil, err
	}
	// LocateChart is Install's: it carries the registry client for oci://.
	in := action.NewInstall(new(action.Configuration))
	in.ChartPathOptions = opts
	in.SetRegistryClient(reg)
	path, err := in.LocateChart(spec.Chart, settings)
	if err != nil {
		return nil, fmt.Errorf("fetching chart %s: %v", spec.Chart, err)
	}
	return os.ReadFile(path)
}

// repoCA is spec.repoCA and every value of spec.repoCAConfigMap.
func (c *controller) repoCA(ctx context.Context, hc *unstructured.Unstructured, spec Spec) (string, error) {
	ca := spec.RepoCA
	if spec.RepoCAConfigMap != nil && spec.RepoCAConfigMap.Name != "" {
		cm, err := c.client.CoreV1().ConfigMaps(hc.GetNamespace()).Get(ctx, spec.RepoCAConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("spec.repoCAConfigMap: %v", err)
		}
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ca += "\n" + cm.Data[k]
		}
	}
	return strings.TrimSpace(ca), nil
}

// valuesLayers lists the values documents of a HelmChart, lowest first:
// its valuesContent, its valuesSecrets, then its HelmChartConfig's.
func (c *controller) valuesLayers(ctx context.Context, hc *unstructured.Unstructured, spec Spec, cs ConfigSpec) ([]valuesLayer, error) {
	layers := []valuesLayer{{Source: "HelmChart spec.valuesContent", YAML: spec.ValuesContent}}
	secrets, err := c.secretValues(ctx, hc.GetNamespace(), "HelmChart", spec.ValuesSecrets)
	if err != nil {
		return nil, err
	}
	layers = append(layers, secrets...)
	layers = append(layers, valuesLayer{Source: "HelmChartConfig spec.valuesContent", YAML: cs.ValuesContent})
	secrets, err = c.secretValues(ctx, hc.GetNamespace(), "HelmChartConfig", cs.ValuesSecrets)
	if err != nil {
		return nil, err
	}
	return append(layers, secrets...), nil
}

func (c *controller) secretValues(ctx context.Context, namespace, kind string, refs []valuesSecret) ([]valuesLayer, error) {
	var out []valuesLayer
	for _, ref := range refs {
		s, err := c.client.CoreV1().Secrets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s spec.valuesSecrets: %v", kind, err)
		}
		for _, k := range ref.Keys {
			v, ok := s.Data[k]
			if !ok {
				return nil, fmt.Errorf("%s spec.valuesSecrets: Secret %s/%s has no key %q", kind, namespace, ref.Name, k)
			}
			out = append(out, valuesLayer{Source: fmt.Sprintf("Secret %s/%s key %s", namespace, ref.Name, k), YAML: string(v)})
		}
	}
	return out, nil
}
