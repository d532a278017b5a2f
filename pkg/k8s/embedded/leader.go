package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kubox-io/kubox/pkg/kubeclient"
)

// LeaderElection says whether a controller must hold a lease before it runs
// (a datastore other servers may share) and how to reach the API for it.
type LeaderElection struct {
	Enabled    bool
	Kubeconfig string
}

// elected wraps run so that it runs only while this process holds the
// lease named lease in kube-system. kubox elects instead of the upstream
// components because their own election ends the whole process when it
// stops, and the scheduler's does so even on a requested shutdown.
func elected(le LeaderElection, lease string, run func(ctx context.Context) error) func(ctx context.Context) error {
	if !le.Enabled {
		return run
	}
	return func(ctx context.Context) error {
		client, err := kubeclient.New(le.Kubeconfig)
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
					cancel() // give up the lease when the component ends
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
		return errors.New(fmt.Sprint("lost the ", lease, " lease"))
	}
}
