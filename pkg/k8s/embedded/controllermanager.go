package embedded

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/kubox-io/kubox/pkg/component"
)

// NewControllerManager returns kube-controller-manager as a component.
func NewControllerManager(args []string, le LeaderElection) (component.Component, error) {
	s, err := options.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	known, disabled, aliases := app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases()
	fss := s.Flags(known, disabled, aliases)
	s.ParsedFlags = &fss
	if err := parseFlags("kube-controller-manager", fss, args); err != nil {
		return nil, err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-controller-manager feature gates: %w", err)
	}
	return &component.Func{
		ComponentName: "controller-manager",
		Run: elected(le, "kube-controller-manager", func(ctx context.Context) error {
			ctx = klog.NewContext(ctx, klog.Background().WithName("controller-manager"))
			c, err := s.Config(ctx, known, disabled, aliases)
			if err != nil {
				return err
			}
			return app.Run(ctx, c.Complete())
		}),
	}, nil
}
