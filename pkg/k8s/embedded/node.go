package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	kubeletoptions "k8s.io/kubernetes/cmd/kubelet/app/options"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"

	"github.com/kubox-io/kubox/pkg/component"
)

// NewKubelet returns the kubelet as a component. configFile holds the
// KubeletConfiguration kubox wrote; args are the kubelet's flags (flags
// that mirror configuration fields override the file, as upstream does).
func NewKubelet(configFile string, args []string) (component.Component, error) {
	s, err := kubeletServer(configFile, args)
	if err != nil {
		return nil, err
	}
	healthz := fmt.Sprintf("http://%s/healthz", hostPort(s.HealthzBindAddress, s.HealthzPort))
	return &component.Func{
		ComponentName: "kubelet",
		Run: detachOnStop(func(ctx context.Context) error {
			ctx = klog.NewContext(ctx, klog.Background().WithName("kubelet"))
			deps, err := kubeletapp.UnsecuredDependencies(ctx, s, utilfeature.DefaultFeatureGate)
			if err != nil {
				return err
			}
			return kubeletapp.Run(ctx, s, deps, utilfeature.DefaultFeatureGate)
		}),
		ReadyCheck:   func(ctx context.Context) error { return getOK(ctx, http.DefaultClient, healthz) },
		PollInterval: 200 * time.Millisecond,
	}, nil
}

// kubeletServer reads the kubelet's configuration as its command does: the
// file, then the drop-ins of --config-dir, then the command line.
func kubeletServer(configFile string, args []string) (*kubeletoptions.KubeletServer, error) {
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, configFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet configuration %s: %w", configFile, err)
	}
	kc, err := loader.Load(context.Background())
	if err != nil {
		return nil, fmt.Errorf("kubelet configuration %s: %w", configFile, err)
	}
	if kc.EvictionHard == nil {
		kc.EvictionHard = eviction.DefaultEvictionHard
	}
	kf := kubeletoptions.NewKubeletFlags()
	if err := parseKubeletFlags(kf, kc, args); err != nil {
		return nil, err
	}
	if dir := kf.KubeletDropinConfigDirectory; dir != "" {
		if err := mergeKubeletDropins(kc, dir); err != nil {
			return nil, fmt.Errorf("kubelet drop-in configuration in %s: %v; check --kubelet-arg config-dir", dir, err)
		}
		// The command line wins over the drop-ins, as it does over the file.
		if err := parseKubeletFlags(kubeletoptions.NewKubeletFlags(), kc, args); err != nil {
			return nil, err
		}
	}
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(kc.FeatureGates); err != nil {
		return nil, fmt.Errorf("kubelet feature gates: %w", err)
	}
	if err := kubeletoptions.ValidateKubeletFlags(kf); err != nil {
		return nil, fmt.Errorf("invalid kubelet flags: %w; check --kubelet-arg", err)
	}
	if err := kubeletvalidation.ValidateKubeletConfiguration(kc, utilfeature.DefaultFeatureGate); err != nil {
		return nil, fmt.Errorf("invalid kubelet configuration: %w; check --kubelet-arg", err)
	}
	return &kubeletoptions.KubeletServer{KubeletFlags: *kf, KubeletConfiguration: *kc}, nil
}

// parseKubeletFlags applies the kubelet's command line to kf and kc.
func parseKubeletFlags(kf *kubeletoptions.KubeletFlags, kc *kubeletconfig.KubeletConfiguration, args []string) error {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	kf.AddFlags(fs)
	kubeletoptions.AddKubeletConfigFlags(fs, kc)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("invalid kubelet argument: %v; check --kubelet-arg", err)
	}
	return nil
}

func hostPort(addr string, port int32) string {
	if addr == "" {
		addr = "127.0.0.1"
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// NewKubeProxy returns kube-proxy as a component.
func NewKubeProxy(args []string) (component.Component, error) {
	o := proxyapp.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	fs.SetOutput(discard{})
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("invalid kube-proxy argument: %v; check --kube-proxy-arg", err)
	}
	if err := o.Complete(fs); err != nil {
		return nil, fmt.Errorf("kube-proxy: %w; check --kube-proxy-arg", err)
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("invalid kube-proxy configuration: %w; check --kube-proxy-arg", err)
	}
	healthz := ""
	if f := fs.Lookup("healthz-bind-address"); f != nil {
		healthz = f.Value.String()
	}
	families := clusterFamilies(fs.Lookup("cluster-cidr"))
	return &component.Func{
		ComponentName: "kube-proxy",
		Run: detachOnStop(func(ctx context.Context) error {
			return o.Run(klog.NewContext(ctx, klog.Background().WithName("kube-proxy")))
		}),
		ReadyCheck: func(ctx context.Context) error { return proxySynced(ctx, healthz, families) },
		// The check is a loopback request and a metric read; the pod
		// network waits for it.
		PollInterval: 20 * time.Millisecond,
	}, nil
}

// clusterFamilies names the IP families of kube-proxy's --cluster-cidr
// ("IPv4", "IPv6", as kube-proxy labels them); nil when it is unset.
func clusterFamilies(f *pflag.Flag) map[string]bool {
	if f == nil || f.Value.String() == "" {
		return nil
	}
	families := map[string]bool{}
	for _, c := range strings.Split(f.Value.String(), ",") {
		ip, _, err := net.ParseCIDR(strings.TrimSpace(c))
		if err != nil {
			return nil // kube-proxy's own validation reports it
		}
		if ip.To4() != nil {
			families[string(v1.IPv4Protocol)] = true
		} else {
			families[string(v1.IPv6Protocol)] = true
		}
	}
	return families
}

// proxySynced is nil once kube-proxy has written its rules at least once
// for each of its IP families. Pods started before that may open
// connections to a Service IP that no rule translates yet; such a
// connection hangs until it times out (30 s for CoreDNS's first API
// connection). kube-proxy's /healthz names its families, but it reports a
// family as updated as soon as its sync loop starts, which can be before
// its informers have synced and any rule is written; the time of a
// family's last successful sync is in kube-proxy's metrics, which in this
// process are read directly. kube-proxy runs a proxier for each family the
// host supports, one after the other; only the cluster's families
// (families, or all when nil) have Services to translate.
func proxySynced(ctx context.Context, addr string, families map[string]bool) error {
	if addr == "" {
		return nil // health server turned off: nothing to wait on
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Status map[string]json.RawMessage `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return err
	}
	if len(h.Status) == 0 {
		return fmt.Errorf("kube-proxy has not synced its rules yet")
	}
	wait := map[string]bool{}
	for family := range h.Status {
		if families[family] {
			wait[family] = true
		}
	}
	if len(wait) == 0 { // none of the cluster's families: wait for what runs
		for family := range h.Status {
			wait[family] = true
		}
	}
	for family := range wait {
		var m dto.Metric
		if err := proxymetrics.SyncProxyRulesLastTimestamp.WithLabelValues(family).Write(&m); err != nil {
			return err
		}
		if m.GetGauge().GetValue() == 0 {
			return fmt.Errorf("kube-proxy has not synced its %s rules yet", family)
		}
	}
	return nil
}

// detachOnStop returns once ctx ends even if run does not: the kubelet and
// kube-proxy are written as processes and do not all return on
// cancellation; kubox exits right after stopping them.
func detachOnStop(run func(ctx context.Context) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- run(ctx) }()
		select {
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("stopped unexpectedly")
			}
			return err
		case <-ctx.Done():
			return nil
		}
	}
}
