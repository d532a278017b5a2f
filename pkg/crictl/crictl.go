// Package crictl is `kubox crictl`: a CRI client with crictl's everyday
// commands, flags and output, preset to the node's containerd. crictl
// itself (sigs.k8s.io/cri-tools/cmd/crictl) is a main package and exports
// no commands, so this one is assembled from what upstream does export: the
// CRI clients and the log reader of k8s.io/cri-client, and cri-tools'
// crictl.yaml reader and streaming executor.
package crictl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ucli "github.com/urfave/cli/v2"
	"google.golang.org/grpc/grpclog"
	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"sigs.k8s.io/cri-tools/pkg/common"
)

// Options preset the client for a kubox node.
type Options struct {
	// Endpoint is the node's CRI socket, e.g. unix:///run/kubox/containerd/containerd.sock,
	// used unless the command line, the environment or a crictl.yaml the
	// user names says otherwise.
	Endpoint string
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
}

// Main runs the client with args (args[0] is the program name) and returns
// the exit code.
func Main(args []string, o Options) int {
	app := newApp(o)
	if err := app.Run(args); err != nil {
		fmt.Fprintf(o.Stderr, "crictl: %v\n", err)
		return 1
	}
	return 0
}

// clients are the connections a command uses, made once flags are parsed.
type clients struct {
	o       Options
	runtime internalapi.RuntimeService
	images  internalapi.ImageManagerService
	timeout time.Duration
}

func newApp(o Options) *ucli.App {
	cl := &clients{o: o}
	app := &ucli.App{
		Name:                 "crictl",
		Usage:                "CRI client of the kubox node (crictl's everyday commands)",
		HideVersion:          true,
		EnableBashCompletion: true,
		Reader:               o.Stdin,
		Writer:               o.Stdout,
		ErrWriter:            o.Stderr,
		ExitErrHandler:       func(*ucli.Context, error) {},
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"CRI_CONFIG_FILE"},
				Usage: "a crictl.yaml to read endpoints and timeout from (none by default: kubox's node is preset)"},
			&ucli.StringFlag{Name: "runtime-endpoint", Aliases: []string{"r"}, EnvVars: []string{"CONTAINER_RUNTIME_ENDPOINT"},
				Usage: "CRI runtime endpoint (default: the kubox node's containerd, " + o.Endpoint + ")"},
			&ucli.StringFlag{Name: "image-endpoint", Aliases: []string{"i"}, EnvVars: []string{"IMAGE_SERVICE_ENDPOINT"},
				Usage: "CRI image endpoint (default: the runtime endpoint)"},
			&ucli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 10 * time.Second,
				Usage: "time limit of connecting and of each request (pulls and followed logs excepted)"},
			&ucli.BoolFlag{Name: "debug", Aliases: []string{"D"}, Usage: "log the client's requests"},
		},
		Before: cl.connect,
		After:  cl.close,
		Commands: []*ucli.Command{
			cl.versionCommand(), cl.infoCommand(),
			cl.psCommand(), cl.inspectCommand(), cl.logsCommand(), cl.execCommand(),
			cl.stopCommand(), cl.rmCommand(),
			cl.podsCommand(), cl.inspectpCommand(), cl.stoppCommand(), cl.rmpCommand(),
			cl.imagesCommand(), cl.inspectiCommand(), cl.pullCommand(), cl.rmiCommand(),
		},
	}
	sort.Slice(app.Commands, func(i, j int) bool { return app.Commands[i].Name < app.Commands[j].Name })
	return app
}

// connect resolves the endpoints (command line or environment, then the
// named crictl.yaml, then kubox's node) and dials them.
func (cl *clients) connect(c *ucli.Context) error {
	// Help and completion need no runtime.
	if c.NArg() == 0 || c.Args().First() == "help" || c.Bool("generate-bash-completion") {
		return nil
	}
	runtimeEP, imageEP := cl.o.Endpoint, ""
	cl.timeout = c.Duration("timeout")
	debug := c.Bool("debug")
	if file := c.String("config"); file != "" {
		exe, _ := os.Executable()
		cfg, err := common.GetServerConfigFromFile(file, exe)
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		if cfg.RuntimeEndpoint != "" {
			runtimeEP = cfg.RuntimeEndpoint
		}
		imageEP = cfg.ImageEndpoint
		if cfg.Timeout > 0 && !c.IsSet("timeout") {
			cl.timeout = cfg.Timeout
		}
		debug = debug || cfg.Debug
	}
	if c.IsSet("runtime-endpoint") {
		runtimeEP = c.String("runtime-endpoint")
	}
	if c.IsSet("image-endpoint") {
		imageEP = c.String("image-endpoint")
	}
	if imageEP == "" {
		imageEP = runtimeEP
	}
	if cl.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	c.Context = cl.logContext(c.Context, debug)
	if err := socketExists(runtimeEP); err != nil {
		return err
	}
	var err error
	if cl.runtime, err = criclient.NewRemoteRuntimeService(c.Context, runtimeEP, cl.timeout, nil, false); err != nil {
		return unreachable(runtimeEP, err)
	}
	if cl.images, err = criclient.NewRemoteImageService(c.Context, imageEP, cl.timeout, nil, false); err != nil {
		return unreachable(imageEP, err)
	}
	return nil
}

// logContext carries the logger the CRI clients write to: nothing unless
// --debug, so that failures are reported once, by Main. gRPC's own logger
// is the process's; this process is the client alone, so it is quieted too.
func (cl *clients) logContext(ctx context.Context, debug bool) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	if debug {
		return klog.NewContext(ctx, klog.Background().V(0))
	}
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	return klog.NewContext(ctx, logr.Discard())
}

// socketExists says in one line that a unix endpoint's socket is missing,
// which is what a stopped node or another data dir looks like.
func socketExists(endpoint string) error {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no container runtime socket at %s: is the kubox node running, and is this its data dir (KUBOX_DATA_DIR, or data-dir in KUBOX_CONFIG_FILE)? Or give --runtime-endpoint", path)
	}
	return nil
}

func unreachable(endpoint string, err error) error {
	return fmt.Errorf("cannot reach the container runtime at %s: %v; give another with --runtime-endpoint", endpoint, err)
}

func (cl *clients) close(c *ucli.Context) error {
	ctx := context.Background()
	if cl.runtime != nil {
		_ = cl.runtime.Close(ctx)
	}
	if cl.images != nil {
		_ = cl.images.Close(ctx)
	}
	return nil
}
