package embedded

import (
	"context"

	"github.com/kubox-io/kubox/pkg/leader"
)

// LeaderElection says whether a component must hold a lease before it runs.
type LeaderElection = leader.Election

// elected wraps run so that it runs only while this process holds the
// lease named lease in kube-system. kubox elects instead of the upstream
// components because their own election ends the whole process when it
// stops, and the scheduler's does so even on a requested shutdown.
func elected(le LeaderElection, lease string, run func(ctx context.Context) error) func(ctx context.Context) error {
	return le.Wrap(lease, run)
}
