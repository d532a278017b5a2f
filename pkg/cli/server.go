package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/kubox-io/kubox/pkg/agent"
	"github.com/kubox-io/kubox/pkg/component"
	"github.com/kubox-io/kubox/pkg/config"
	"github.com/kubox-io/kubox/pkg/configfile"
	"github.com/kubox-io/kubox/pkg/idlegc"
	"github.com/kubox-io/kubox/pkg/kubeclient"
	"github.com/kubox-io/kubox/pkg/kuboxmetrics"
	"github.com/kubox-io/kubox/pkg/logging"
	"github.com/kubox-io/kubox/pkg/server"
	"github.com/kubox-io/kubox/pkg/version"
)

const defaultConfigFile = config.DefaultConfigDir + "/config.yaml"

func serverCommand() *ucli.Command {
	o := &config.ServerOptions{ConfigDir: config.DefaultConfigDir}
	ao := &config.AgentOptions{}
	nodeOpts, nodeVals := nodeFlags(ao)
	disable := ucli.NewStringSlice()
	var configFile string
	tlsSANs := ucli.NewStringSlice()
	apiArgs, cmArgs, schedArgs := ucli.NewStringSlice(), ucli.NewStringSlice(), ucli.NewStringSlice()
	return &ucli.Command{
		Name:         "server",
		Usage:        "run the Kubernetes control plane",
		OnUsageError: usageError,
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultConfigFile, EnvVars: []string{"KUBOX_CONFIG_FILE"}, Destination: &configFile,
				Usage: "config file with flags as YAML keys (config.yaml.d/*.yaml beside it are read too)"},
			&ucli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KUBOX_DATA_DIR"}, Value: config.DefaultDataDir, Destination: &o.DataDir, Usage: "where kubox keeps its state"},
			&ucli.StringFlag{Name: "bind-address", Destination: &o.BindAddress, Usage: "address the API listens on (default 0.0.0.0)"},
			&ucli.StringFlag{Name: "advertise-address", Destination: &o.AdvertiseAddress, Usage: "address the API advertises to the cluster (default: the node's primary IP)"},
			&ucli.IntFlag{Name: "https-listen-port", Value: config.DefaultHTTPSPort, Destination: &o.HTTPSPort, Usage: "API port"},
			&ucli.StringFlag{Name: "cluster-cidr", Value: config.DefaultClusterCIDR, Destination: &o.ClusterCIDR, Usage: "pod network: one CIDR, or an IPv4 and an IPv6 one for dual-stack (10.42.0.0/16,fd42::/56)"},
			&ucli.StringFlag{Name: "service-cidr", Value: config.DefaultServiceCIDR, Destination: &o.ServiceCIDR, Usage: "service network: one CIDR, or one per family in the --cluster-cidr order (10.43.0.0/16,fd43::/112)"},
			&ucli.StringFlag{Name: "cluster-dns", Value: config.DefaultClusterDNS, Destination: &o.ClusterDNS, Usage: "cluster DNS service address"},
			&ucli.StringFlag{Name: "cluster-domain", Value: config.DefaultClusterDomain, Destination: &o.ClusterDomain, Usage: "cluster DNS domain"},
			&ucli.StringFlag{Name: "service-node-port-range", Value: config.DefaultNodePortRange, Destination: &o.ServiceNodePorts, Usage: "NodePort range"},
			&ucli.StringSliceFlag{Name: "tls-san", Destination: tlsSANs, Usage: "extra name or IP for the API certificate (repeatable)"},
			&ucli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, EnvVars: []string{"KUBOX_KUBECONFIG_OUTPUT"}, Destination: &o.WriteKubeconfig,
				Usage: "where to write the admin kubeconfig (default " + config.DefaultConfigDir + "/kubox.yaml)"},
			&ucli.StringFlag{Name: "write-kubeconfig-mode", Value: config.DefaultKubeconfigMode, EnvVars: []string{"KUBOX_KUBECONFIG_MODE"}, Destination: &o.WriteKubeconfigMode,
				Usage: "file mode of the admin kubeconfig"},
			&ucli.StringFlag{Name: "datastore-endpoint", EnvVars: []string{"KUBOX_DATASTORE_ENDPOINT"}, Destination: &o.DatastoreEndpoint,
				Usage: "etcd URLs (http(s)://…, comma-separated), postgres://… or mysql://…; empty for SQLite"},
			&ucli.StringFlag{Name: "datastore-cafile", Destination: &o.DatastoreCAFile, Usage: "CA bundle for the datastore"},
			&ucli.StringFlag{Name: "datastore-certfile", Destination: &o.DatastoreCertFile, Usage: "client certificate for the datastore"},
			&ucli.StringFlag{Name: "datastore-keyfile", Destination: &o.DatastoreKeyFile, Usage: "client key for the datastore"},
			&ucli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"KUBOX_URL"}, Destination: &o.ServerURL,
				Usage: "join the cluster of this server (https://<address>:6443, started with --cluster-init) as another etcd member and control plane"},
			&ucli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"KUBOX_TOKEN"}, Destination: &o.Token,
				Usage: "the server token (<data-dir>/server/token on a server of the cluster): with --server, to join it; otherwise this server's own, the same on every server sharing a --datastore-endpoint (generate one with 'openssl rand -hex 32')"},
			&ucli.StringFlag{Name: "token-file", EnvVars: []string{"KUBOX_TOKEN_FILE"}, Destination: &o.TokenFile, Usage: "file holding the server token"},
			&ucli.BoolFlag{Name: "cluster-init", Destination: &o.ClusterInit,
				Usage: "keep the datastore in an etcd member run inside the server (data in <data-dir>/server/db/etcd; ports 2379 and 2380, mutual TLS); restarts keep using it"},
			&ucli.DurationFlag{Name: "datastore-compact-interval", Value: config.DefaultCompactInterval, Destination: &o.DatastoreCompactInterval,
				Usage: "how often the datastore's history is compacted to the revision of one interval before (any datastore); older continue tokens and watches get 410 Gone"},
			&ucli.DurationFlag{Name: "cert-validity", Value: config.DefaultCertValidity, Destination: &o.CertValidity,
				Usage: "how long the control plane's certificates are valid; the server renews them while it runs when two thirds have passed"},
			&ucli.DurationFlag{Name: "node-cert-validity", Value: config.DefaultNodeCertValidity, Destination: &o.NodeCertValidity,
				Usage: "how long joining nodes' certificates are valid; nodes renew them when two thirds have passed"},
			&ucli.StringFlag{Name: "snapshot-schedule-cron", Aliases: []string{"etcd-snapshot-schedule-cron"}, Value: config.DefaultSnapshotSchedule, Destination: &o.Snapshot.Schedule,
				Usage: "when to take scheduled snapshots of the datastore (cron: minute hour day month weekday, or @hourly, @every 30m…)"},
			&ucli.IntFlag{Name: "snapshot-retention", Aliases: []string{"etcd-snapshot-retention"}, Value: config.DefaultSnapshotRetention, Destination: &o.Snapshot.Retention,
				Usage: "how many scheduled snapshots to keep"},
			&ucli.StringFlag{Name: "snapshot-dir", Aliases: []string{"etcd-snapshot-dir"}, Destination: &o.Snapshot.Dir,
				Usage: "where snapshots are kept (default <data-dir>/server/db/snapshots)"},
			&ucli.BoolFlag{Name: "snapshot-disable", Aliases: []string{"etcd-disable-snapshots"}, Destination: &o.Snapshot.Disable, Usage: "take no scheduled snapshots"},
			&ucli.StringFlag{Name: "audit-log-path", Destination: &o.Audit.Path, Usage: "write the API server's audit log here (every request's metadata, unless --audit-policy-file)"},
			&ucli.StringFlag{Name: "audit-policy-file", Destination: &o.Audit.PolicyFile, Usage: "audit policy (audit.k8s.io/v1 Policy) instead of kubox's"},
			&ucli.IntFlag{Name: "audit-log-maxage", Destination: &o.Audit.MaxAge, Usage: "days to keep rotated audit logs (0: no limit)"},
			&ucli.IntFlag{Name: "audit-log-maxbackup", Destination: &o.Audit.MaxBackup, Usage: "rotated audit logs to keep (0: no limit)"},
			&ucli.IntFlag{Name: "audit-log-maxsize", Destination: &o.Audit.MaxSize, Usage: "MB an audit log reaches before it is rotated (0: the API server's default)"},
			&ucli.StringFlag{Name: "profile", Destination: &o.Profile,
				Usage: "hardening profile: " + strings.Join(config.Profiles, ", ") + " (no anonymous API access, PodSecurity \"restricted\" outside kube-system unless --pod-security-admission-config-file, audit log on, --protect-kernel-defaults)"},
			&ucli.StringFlag{Name: "pod-security-admission-config-file", Destination: &o.PodSecurityAdmissionConfigFile,
				Usage: "admission configuration (apiserver.config.k8s.io/v1 AdmissionConfiguration) with the PodSecurity plugin's settings"},
			&ucli.BoolFlag{Name: "secrets-encryption", Destination: &o.SecretsEncryption, Usage: "encrypt Secrets at rest (keys in <data-dir>/server/cred/encryption-config.yaml)"},
			&ucli.StringFlag{Name: "secrets-encryption-provider", Value: config.DefaultSecretsEncryptionProvider, Destination: &o.SecretsEncryptionProvider,
				Usage: "aescbc or secretbox, for a new encryption configuration"},
			&ucli.BoolFlag{Name: "cluster-reset", Destination: &o.ClusterReset, Usage: "with --cluster-reset-restore-path: replace the datastore with a snapshot, then start"},
			&ucli.StringFlag{Name: "cluster-reset-restore-path", Destination: &o.ClusterResetRestorePath,
				Usage: "snapshot file to restore (the current database is kept aside; a restart with the same flags does not restore again)"},
			&ucli.StringSliceFlag{Name: "kube-apiserver-arg", Destination: apiArgs, Usage: "extra kube-apiserver flag as name=value (repeatable)"},
			&ucli.StringSliceFlag{Name: "kube-controller-manager-arg", Destination: cmArgs, Usage: "extra kube-controller-manager flag as name=value (repeatable)"},
			&ucli.StringSliceFlag{Name: "kube-scheduler-arg", Destination: schedArgs, Usage: "extra kube-scheduler flag as name=value (repeatable)"},
			&ucli.StringSliceFlag{Name: "disable", Destination: disable, Usage: "built-in add-on not to deploy: " + strings.Join(config.Addons, ", ") + " (repeatable)"},
			&ucli.BoolFlag{Name: "disable-agent", Destination: &ao.DisableAgent, Usage: "run only the control plane, no node"},
			&ucli.BoolFlag{Name: "disable-controller-manager", Destination: &o.DisableControllerManager,
				Usage: "run no kube-controller-manager (another server's serves the cluster)"},
			&ucli.BoolFlag{Name: "disable-scheduler", Destination: &o.DisableScheduler, Usage: "run no kube-scheduler (another server's serves the cluster)"},
			&ucli.StringFlag{Name: "run-dir", Destination: &o.RunDir, Usage: "runtime state such as sockets (default /run/kubox, or one derived from --data-dir)"},
			&ucli.StringFlag{Name: "flannel-backend", Value: config.DefaultFlannelBackend, Destination: &o.FlannelBackend, Usage: "pod network backend: vxlan, host-gw, wireguard-native or none"},
			&ucli.BoolFlag{Name: "debug", EnvVars: []string{"KUBOX_DEBUG"}, Destination: &o.Debug, Usage: "debug logging"},
			&ucli.IntFlag{Name: "v", Destination: &o.Verbosity, Usage: "log verbosity of the Kubernetes components (klog -v)"},
			&ucli.StringFlag{Name: "log-format", Value: config.LogFormatText, EnvVars: []string{"KUBOX_LOG_FORMAT"}, Destination: &o.LogFormat,
				Usage: "text or json: how log lines are written; each names its component (json: time, level, component, msg)"},
		}, append(s3Flags(&o.Snapshot.S3), nodeOpts...)...),
		Action: func(c *ucli.Context) error {
			files, err := configfile.Files(configFile, c.IsSet("config"))
			if err != nil {
				return err
			}
			if err := configfile.Apply(c, "kubox server", files); err != nil {
				return err
			}
			o.TLSSANs = tlsSANs.Value()
			o.Disable = disable.Value()
			o.APIServerArgs, o.ControllerArgs, o.SchedulerArgs = apiArgs.Value(), cmArgs.Value(), schedArgs.Value()
			nodeVals.into(ao)
			cfg, node, err := o.WithNode(*ao)
			if err != nil {
				return err
			}
			log := logging.NewFormat(os.Stderr, cfg.Verbosity, cfg.Debug, logging.Format(cfg.LogFormat))
			log.InstallGlobal()
			// Whatever still logs after the command returns (an upstream
			// goroutine winding down) must not follow its last line.
			defer log.Close()
			// Clients reconnect with renewed certificates well before the
			// old ones expire.
			kubeclient.SetCertReload(kubeclient.CertReloadFor(min(cfg.CertValidity, cfg.NodeCertValidity)))
			phases := component.NewPhases(time.Now())
			log.Infof("starting kubox %s (kubernetes %s), data dir %s", version.Version, version.Kubernetes(), cfg.Paths.DataDir)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if node != nil {
				if err := agent.CheckHost(node); err != nil {
					return err
				}
			}
			srv, err := server.New(cfg, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			figures := srv.Figures(phases)
			if node != nil {
				figures.Imports = &kuboxmetrics.Imports{}
			}
			defer kuboxmetrics.New(figures).Register(log.Warnf)()
			comps := srv.Components()
			if node != nil {
				creds, err := srv.NodeCredentials(node)
				if err != nil {
					return fmt.Errorf("node certificates: %w", err)
				}
				// The node's host part starts beside the control plane;
				// the kubelet and what follows wait for both.
				host, cluster := agent.Components(node, cfg.Paths, creds, log, phases, figures.Imports)
				comps = append([]component.Component{&component.Concurrent{ComponentName: "control-plane+host",
					Lines: [][]component.Component{comps, host}, Log: log, Phases: phases}}, cluster...)
			}
			comps = append(comps, idlegc.Component(log.For("idle-gc")))
			if err := (&component.Runner{Log: log, Phases: phases}).Run(ctx, comps...); err != nil {
				return err
			}
			log.Infof("stopped")
			return nil
		},
	}
}
