package embedded

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/kubox-io/kubox/pkg/component"
)

// NewScheduler returns kube-scheduler as a component.
func NewScheduler(args []string, le LeaderElection) (component.Component, error) {
	opts := options.NewOptions()
	if err := parseFlags("kube-scheduler", *opts.Flags, args); err != nil {
		return nil, err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-scheduler feature gates: %w", err)
	}
	if opts.InformerName == nil {
		name, err := informerName("kube-scheduler")
		if err != nil {
			return nil, err
		}
		opts.InformerName = name
	}
	return &component.Func{
		ComponentName: "scheduler",
		Run: elected(le, "kube-scheduler", func(ctx context.Context) error {
			ctx = klog.NewContext(ctx, klog.Background().WithName("scheduler"))
			cc, sched, err := app.Setup(ctx, opts)
			if err != nil {
				return err
			}
			return app.Run(ctx, cc, sched)
		}),
	}, nil
}
