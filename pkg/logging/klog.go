package logging

import (
	"flag"
	"fmt"
	stdlog "log"
	"runtime"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// InstallGlobal routes the process-wide loggers of the embedded libraries
// (klog for Kubernetes, logrus for kine, the standard library's log) into
// l, so that their lines take l's format too. They are global by their
// nature; this is the one place kubox touches them, and it is safe to call
// again with the same settings (a second server in one process).
func (l *Logger) InstallGlobal() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", strconv.Itoa(l.out.verbosity))
	_ = fs.Set("logtostderr", "false")
	klog.SetLoggerWithOptions(logr.New(&klogSink{l: l}), klog.ContextualLogger(true))

	stdlog.SetFlags(0) // l stamps the time
	stdlog.SetOutput(l.Writer("stdlog"))

	logrus.SetOutput(l.Writer("kine"))
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	if l.out.debug {
		logrus.SetLevel(logrus.DebugLevel)
	} else {
		logrus.SetLevel(logrus.InfoLevel)
	}
}

// klogSink is the logr sink behind klog. It tags each line with the logger's
// name when a component set one, and otherwise with the component whose code
// made the call, found from the caller's package.
type klogSink struct {
	l      *Logger
	name   string
	values []any
}

var _ logr.LogSink = &klogSink{}

func (s *klogSink) Init(logr.RuntimeInfo) {}

func (s *klogSink) Enabled(level int) bool { return level <= s.l.out.verbosity }

func (s *klogSink) Info(level int, msg string, kv ...any) {
	s.l.line("info", s.component(), format(msg, s.values, kv))
}

func (s *klogSink) Error(err error, msg string, kv ...any) {
	if err != nil {
		kv = append([]any{"err", err}, kv...)
	}
	s.l.line("error", s.component(), format(msg, s.values, kv))
}

func (s *klogSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	return &c
}

func (s *klogSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name == "" {
		c.name = name
	} else {
		c.name += "/" + name
	}
	return &c
}

func (s *klogSink) component() string {
	if s.name != "" {
		if i := strings.IndexByte(s.name, '/'); i > 0 {
			return s.name[:i]
		}
		return s.name
	}
	return callerComponent()
}

// componentOf maps package path prefixes to the component they belong to.
// The first match wins, so more specific prefixes come first.
var componentOf = []struct{ prefix, component string }{
	{"k8s.io/kubernetes/cmd/kube-apiserver", "apiserver"},
	{"k8s.io/kubernetes/cmd/kube-controller-manager", "controller-manager"},
	{"k8s.io/kubernetes/cmd/kube-scheduler", "scheduler"},
	{"k8s.io/kubernetes/cmd/kubelet", "kubelet"},
	{"k8s.io/kubernetes/cmd/kube-proxy", "kube-proxy"},
	{"k8s.io/kubernetes/pkg/controller", "controller-manager"},
	{"k8s.io/controller-manager", "controller-manager"},
	{"k8s.io/cloud-provider", "controller-manager"},
	{"k8s.io/kubernetes/pkg/scheduler", "scheduler"},
	{"k8s.io/kubernetes/pkg/kubelet", "kubelet"},
	{"k8s.io/kubernetes/pkg/volume", "kubelet"},
	{"k8s.io/kubernetes/pkg/proxy", "kube-proxy"},
	{"k8s.io/kubernetes/pkg/", "apiserver"},
	{"k8s.io/kubernetes/plugin", "apiserver"},
	{"k8s.io/apiserver", "apiserver"},
	{"k8s.io/apiextensions-apiserver", "apiserver"},
	{"k8s.io/kube-aggregator", "apiserver"},
	{"github.com/k3s-io/kine", "kine"},
	{"github.com/flannel-io/flannel", "flannel"},
	{"github.com/kubox-io/kubox", "kubox"},
}

func callerComponent() string {
	var pcs [32]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	fallback := ""
	for {
		f, more := frames.Next()
		fn := f.Function
		if !strings.HasPrefix(fn, "k8s.io/klog/") && !strings.HasPrefix(fn, "github.com/go-logr/") &&
			!strings.HasPrefix(fn, "github.com/kubox-io/kubox/pkg/logging.(*klogSink)") &&
			!strings.HasPrefix(fn, "github.com/kubox-io/kubox/pkg/logging.callerComponent") {
			for _, m := range componentOf {
				if strings.HasPrefix(fn, m.prefix) {
					return m.component
				}
			}
			// Shared libraries (client-go, component-base) log on behalf of
			// whoever called them: keep looking up the stack.
			if fallback == "" {
				fallback = "k8s"
			}
		}
		if !more {
			break
		}
	}
	if fallback == "" {
		fallback = "kubox"
	}
	return fallback
}

func format(msg string, values, kv []any) string {
	var b strings.Builder
	b.WriteString(msg)
	for _, list := range [][]any{values, kv} {
		for i := 0; i < len(list); i += 2 {
			b.WriteByte(' ')
			fmt.Fprint(&b, list[i])
			b.WriteByte('=')
			if i+1 < len(list) {
				v := fmt.Sprint(list[i+1])
				if strings.ContainsAny(v, " \"=") {
					v = strconv.Quote(v)
				}
				b.WriteString(v)
			}
		}
	}
	return b.String()
}
