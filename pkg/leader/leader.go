// Package leader runs a controller only while its process holds a Lease,
// so that of several servers sharing a datastore one alone acts.
package leader

import (
	"context"
	"errors"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// Election says whether a controller must hold a lease before it runs
// (a datastore other servers may share) and how to reach the API for it.
type Election struct {
	Enabled    bool
	Kubeconfig string
}

// Wrap returns run made to run only while this process holds the Lease
// named lease in kube-system. The lease is given up when run returns or ctx
// ends; losing it ends run and returns an error, so that a supervisor
// starts the controller again as a candidate.
func (e Election) Wrap(lease string, run func(ctx context.Context) error) func(ctx context.Context) error {
	if !e.Enabled {
		return run
	}
	return func(ctx context.Context) error {
		client, err := kubeclient.New(e.Kubeconfig)
		if err != nil {
			return err
		}
		host, _ := os.Hostname()
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: lease, Namespace: metav1.NamespaceSystem},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())},
		}
		var runErr error
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		leaderelection.RunOrDie(lctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            lease,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					runErr = run(ctx)
					cancel() // give up the lease when the controller ends
				},
				OnStoppedLeading: func() {},
			},
		})
		if ctx.Err() != nil {
			return nil
		}
		if runErr != nil {
			return runErr
		}
		return errors.New("lost the " + lease + " lease")
	}
}
