package embedded

import (
	"slices"
	"sort"
	_ "unsafe" // for go:linkname

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	_ "k8s.io/apiserver/pkg/storage/storagebackend/factory" // owns the logger below
	"k8s.io/klog/v2"
)

// etcd3ClientLogger is the zap logger kube-apiserver hands every etcd client
// it makes. Upstream builds it at init, writing JSON to stderr past klog, so
// its lines ignore kubox's log format; routeEtcdClientLog points it at klog.
// Process-wide, like klog itself.
//
//go:linkname etcd3ClientLogger k8s.io/apiserver/pkg/storage/storagebackend/factory.etcd3ClientLogger
var etcd3ClientLogger *zap.Logger

// routeEtcdClientLog sends the API server's etcd client logs through klog,
// and so through kubox's logger, tagged apiserver.
func routeEtcdClientLog() {
	etcd3ClientLogger = zap.New(klogCore{}).Named("etcd-client")
}

// klogCore is a zap core that hands each entry to klog's global logger.
type klogCore struct{ fields []zapcore.Field }

func (c klogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.InfoLevel }

func (c klogCore) With(fields []zapcore.Field) zapcore.Core {
	return klogCore{fields: append(slices.Clip(c.fields), fields...)}
}

func (c klogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c klogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clip(c.fields), fields...) {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		kv = append(kv, k, enc.Fields[k])
	}
	log := klog.Background().WithName("apiserver").WithName(e.LoggerName)
	if e.Level >= zapcore.ErrorLevel {
		log.Error(nil, e.Message, kv...)
	} else {
		log.Info(e.Message, kv...)
	}
	return nil
}

func (c klogCore) Sync() error { return nil }
