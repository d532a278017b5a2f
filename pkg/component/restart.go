package component

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Restart supervises a component that can be started again in the same
// process (a child process such as containerd, or kubox's own controllers;
// not the embedded upstream servers, whose global state allows one start):
// when it fails while running, it is stopped and started again after a
// back-off, and the process goes on. Only when it keeps failing (MaxFailures
// within Window) is the failure passed on, which stops everything.
type Restart struct {
	Inner Component
	Log   Logger
	// MaxFailures within Window end the supervision; defaults 5 and 10m.
	MaxFailures int
	Window      time.Duration
	// Backoff is the first wait before a restart, doubled up to MaxBackoff;
	// defaults 1s and 30s.
	Backoff, MaxBackoff time.Duration

	mu       sync.Mutex
	stopping bool
	stopped  chan struct{} // closed by Stop: no restart begins after it
	failures []time.Time
	wake     chan error
	loop     chan struct{} // closed when the supervising goroutine ends
}

// Name implements Component.
func (r *Restart) Name() string { return r.Inner.Name() }

// Init implements Initializer for the supervised component, once.
func (r *Restart) Init(ctx context.Context) error {
	if i, ok := r.Inner.(Initializer); ok {
		return i.Init(ctx)
	}
	return nil
}

// Start implements Component: it starts the inner component and supervises
// it until Stop.
func (r *Restart) Start(ctx context.Context, fail func(error)) error {
	r.mu.Lock()
	r.stopping, r.stopped, r.wake, r.loop = false, make(chan struct{}), make(chan error, 1), make(chan struct{})
	r.mu.Unlock()
	if err := r.Inner.Start(ctx, r.innerFailed); err != nil {
		close(r.loop)
		return err
	}
	go r.supervise(context.WithoutCancel(ctx), fail)
	return nil
}

// innerFailed hands the inner component's failure to the supervisor.
func (r *Restart) innerFailed(err error) {
	select {
	case r.wake <- err:
	default: // a failure is pending already
	}
}

func (r *Restart) supervise(ctx context.Context, fail func(error)) {
	defer close(r.loop)
	backoff := r.or(r.Backoff, time.Second)
	for {
		var err error
		select {
		case <-r.stopped:
			return
		case err = <-r.wake:
		}
		if err == nil {
			err = fmt.Errorf("exited unexpectedly")
		}
		if n := r.failed(time.Now()); n >= r.orInt(r.MaxFailures, 5) {
			fail(fmt.Errorf("failed %d times within %s, last: %w", n, r.or(r.Window, 10*time.Minute), err))
			return
		}
		for {
			r.logf("%s failed: %v; restarting it in %s", r.Name(), err, backoff)
			select {
			case <-r.stopped:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, r.or(r.MaxBackoff, 30*time.Second))
			if err = r.restart(ctx); err == nil {
				break
			}
			if n := r.failed(time.Now()); n >= r.orInt(r.MaxFailures, 5) {
				fail(fmt.Errorf("failed %d times within %s, last: %w", n, r.or(r.Window, 10*time.Minute), err))
				return
			}
		}
		r.logf("%s restarted", r.Name())
		backoff = r.or(r.Backoff, time.Second)
	}
}

// restart stops the inner component and starts it again, up to ready.
func (r *Restart) restart(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_ = r.Inner.Stop(sctx) // what is left of it; its own error is the failure's
	cancel()
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if stopping {
		return nil
	}
	if err := r.Inner.Start(ctx, r.innerFailed); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return r.Inner.Ready(rctx)
}

// failed records a failure and counts those within the window.
func (r *Restart) failed(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	window := r.or(r.Window, 10*time.Minute)
	kept := r.failures[:0]
	for _, t := range r.failures {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	r.failures = append(kept, now)
	return len(r.failures)
}

// Ready implements Component.
func (r *Restart) Ready(ctx context.Context) error { return r.Inner.Ready(ctx) }

// Stop implements Component: supervision ends, then the inner component.
func (r *Restart) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped == nil || r.stopping {
		r.mu.Unlock()
		return nil
	}
	r.stopping = true
	close(r.stopped)
	loop := r.loop
	r.mu.Unlock()
	select {
	case <-loop: // a restart under way finishes first
	case <-ctx.Done():
	}
	return r.Inner.Stop(ctx)
}

func (r *Restart) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log.Infof(format, args...)
	}
}

func (r *Restart) or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (r *Restart) orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
