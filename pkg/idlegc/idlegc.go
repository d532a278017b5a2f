// Package idlegc keeps kubox's heap tight once it has started. Go's
// default GC target lets the heap grow to twice what is live before it
// collects; during start-up that saves collections on the critical path,
// but an idle node then holds about as much garbage as live data. Once
// every component is ready, kubox lowers the target, and after start-up's
// churn has settled it hands the freed heap back to the system.
package idlegc

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/kubox-io/kubox/pkg/component"
)

// Percent is the GC target once started: the heap may grow by half of
// what is live before a collection. An idle node allocates slowly, so
// the extra collections cost little CPU.
const Percent = 50

// Settle is how long after start-up the freed heap is returned: the
// add-ons and first pods are still being set up right after it.
const Settle = time.Minute

// Component is the last component of a start. It changes nothing when
// the user set GOGC or GOMEMLIMIT: their choice wins.
func Component() component.Component {
	return &component.Func{ComponentName: "idle-gc", Run: func(ctx context.Context) error {
		Run(ctx, 0)
		<-ctx.Done()
		return nil
	}}
}

// Run lowers the GC target after delay, and returns the freed heap Settle
// later (or returns early when ctx ends). A process with no ready point of
// its own (containerd's child) passes its start-up's length as delay.
func Run(ctx context.Context, delay time.Duration) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	for _, step := range []func(){
		func() { debug.SetGCPercent(Percent) },
		func() { debug.FreeOSMemory() },
	} {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		step()
		delay = Settle
	}
}
