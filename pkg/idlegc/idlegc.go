// Package idlegc keeps kubox's heap tight once it has started. Go's
// default GC target lets the heap grow to twice what is live before it
// collects; during start-up that saves collections on the critical path,
// but an idle node then holds about as much garbage as live data. Once
// every component is ready, kubox lowers the target (raising it again
// while a burst allocates fast, see BusyRate), and after start-up's churn
// has settled it hands the freed heap back to the system and drops the
// executable's pages that start-up touched (see ReleaseExecutable), its
// containerd child's too, from memory.
package idlegc

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"time"

	"github.com/kubox-io/kubox/pkg/component"
)

// Percent is the GC target once started: the heap may grow by half of
// what is live before a collection. An idle node allocates slowly, so
// the extra collections cost little CPU.
const Percent = 50

// Settle is how long after start-up the freed heap and the executable's
// pages are returned: the add-ons and first pods are being set up right
// after it. Code those run once is read back from the file, a page per
// fault, if they run again. A process busy at that time (see waitCalm)
// releases once it has been calm for calmReads reads in a row.
const Settle = 30 * time.Second

const calmReads = 2

// Logger is where the component reports.
type Logger interface {
	Infof(format string, args ...any)
	Debugf(format string, args ...any)
}

// Component is the last component of a start. It lowers the GC target
// at once and follows the allocation rate from then on (see BusyRate),
// unless the user set GOGC or GOMEMLIMIT: their choice wins.
func Component(log Logger) component.Component {
	return &component.Func{ComponentName: "idle-gc", Run: func(ctx context.Context) error {
		if !userGC() {
			debug.SetGCPercent(Percent)
			go adapt(ctx, log.Debugf)
		}
		settle(ctx, Settle, true, log.Infof)
		<-ctx.Done()
		return nil
	}}
}

// Run is Component for a process with no ready point of its own
// (containerd's child): after delay, its start-up's length, it lowers the
// GC target and settles at once. From its start on, childSignal from the
// parent releases its mappings of the executable again and evicts (see
// signalChildren). logf may be nil.
func Run(ctx context.Context, delay time.Duration, logf func(format string, args ...any)) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, childSignal)
	defer signal.Stop(sig)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if !userGC() {
				debug.SetGCPercent(Percent)
			}
			settle(ctx, 0, false, logf)
		case <-sig:
			release(false, logf)
		}
	}
}

// settle, after delay and once the process is calm (or not at all when
// ctx ends first), returns the freed heap to the system and releases the
// executable's pages; with children, the children that run the same
// executable release theirs too.
func settle(ctx context.Context, delay time.Duration, children bool, logf func(format string, args ...any)) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	began := time.Now()
	if !waitCalm(ctx, sampleEvery, calmReads, allocRate()) {
		return
	}
	if waited := time.Since(began); waited > (calmReads+1)*sampleEvery {
		logf("busy at the settle time: release postponed by %s", waited.Round(time.Second))
	}
	if !userGC() {
		debug.FreeOSMemory()
	}
	release(children, logf)
}

// release drops this process's mappings of the executable (and, with
// children, has its children drop theirs), then evicts the pages no
// process maps any more from the page cache.
func release(children bool, logf func(format string, args ...any)) {
	before, _, err := ReleaseExecutable()
	if err != nil {
		logf("cannot release the executable's pages: %v", err)
		return
	}
	if children {
		if _, err := signalChildren(); err != nil {
			logf("cannot ask the processes kubox started to release theirs: %v", err)
		}
	}
	if err := EvictExecutable(); err != nil {
		logf("cannot evict the executable's unmapped pages: %v", err)
	}
	logf("released %d MiB of the executable's resident pages and dropped its unmapped ones from the page cache; code still in use is read back a page at a time", before>>10)
}

// userGC tells whether the user chose the GC's settings.
func userGC() bool {
	return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != ""
}
