// Package component gives every part of kubox one explicit lifecycle: start,
// wait until ready, stop. A Runner starts components in order, each only
// after the previous one is ready, fans their runtime failures back to one
// place, and stops what it started in reverse order.
package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Component is one part of a kubox process.
type Component interface {
	// Name tags the component's log lines and errors.
	Name() string
	// Start launches the component and returns once it runs. An error the
	// component hits later is handed to fail (at most once is useful).
	Start(ctx context.Context, fail func(error)) error
	// Ready blocks until the component serves, or ctx ends.
	Ready(ctx context.Context) error
	// Stop ends the component and waits for it, at most until ctx ends.
	Stop(ctx context.Context) error
}

// Initializer is a component with an Init step: checks and derivations
// that change nothing on the machine. The Runner runs every component's
// Init before it starts any, so a problem found there starts nothing.
type Initializer interface {
	Init(ctx context.Context) error
}

// initAll runs the Init of every component that has one, in order, and
// returns the first failure prefixed with the component's name.
func initAll(ctx context.Context, comps []Component) error {
	for _, c := range comps {
		if i, ok := c.(Initializer); ok {
			if err := i.Init(ctx); err != nil {
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
		}
	}
	return nil
}

// Logger is what the Runner reports progress to.
type Logger interface {
	Infof(format string, args ...any)
}

// Runner runs components in order.
type Runner struct {
	Log          Logger
	Phases       *Phases       // records each component's readiness; nil for none
	StopTimeout  time.Duration // per component; default 15s
	ReadyTimeout time.Duration // per component; default 5m
}

// Run starts comps in order and blocks until ctx ends (a clean stop,
// returning nil) or a component fails (returning that error, prefixed with
// the component's name). Either way every started component is stopped, in
// reverse order.
func (r *Runner) Run(ctx context.Context, comps ...Component) error {
	if err := initAll(ctx, comps); err != nil {
		return err
	}
	failed := make(chan error, len(comps))
	var started []Component
	defer func() { r.stop(started) }()

	for _, c := range comps {
		if ctx.Err() != nil {
			return nil // asked to stop: start nothing more
		}
		name := c.Name()
		fail := func(err error) {
			if err == nil {
				err = errors.New("exited unexpectedly")
			}
			select {
			case failed <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
		t0 := time.Now()
		if err := c.Start(ctx, fail); err != nil {
			if ctx.Err() != nil {
				return nil // asked to stop while starting: not a failure
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		started = append(started, c)
		if err := r.waitReady(ctx, c, failed); err != nil {
			return err
		}
		r.Phases.Ready(name)
		if r.Log != nil {
			r.Log.Infof("%s ready after %s", name, time.Since(t0).Round(time.Millisecond))
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

func (r *Runner) waitReady(ctx context.Context, c Component, failed chan error) error {
	timeout := r.ReadyTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Ready(rctx) }()
	select {
	case err := <-failed:
		return err
	case err := <-done:
		if err == nil {
			return nil
		}
		// A failure reported while waiting explains more than the timeout.
		select {
		case ferr := <-failed:
			return ferr
		default:
		}
		if ctx.Err() != nil {
			return nil // stopping while starting is not a failure
		}
		return fmt.Errorf("%s did not become ready within %s: %w", c.Name(), timeout, err)
	}
}

func (r *Runner) stop(started []Component) {
	timeout := r.StopTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	for i := len(started) - 1; i >= 0; i-- {
		c := started[i]
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := c.Stop(ctx); err != nil && r.Log != nil {
			r.Log.Infof("stopping %s: %v", c.Name(), err)
		}
		cancel()
	}
}

// Func adapts a blocking run function (the shape of most upstream entry
// points: run until ctx ends) into a Component.
type Func struct {
	ComponentName string
	// Run blocks until ctx ends; returning earlier is a failure.
	Run func(ctx context.Context) error
	// ReadyCheck, if set, is polled by Ready; otherwise ready once started.
	ReadyCheck func(ctx context.Context) error
	// PollInterval between ReadyCheck calls; default 100ms.
	PollInterval time.Duration
	// ReadyWhen, if set, makes the component ready when it is closed, with
	// no polling; ReadyCheck is then unused.
	ReadyWhen <-chan struct{}
	// StopWait, if set, bounds how long Stop waits for Run to return; past
	// it the component is left to end with the process (a server draining
	// connections of clients that are themselves being stopped).
	StopWait time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Name implements Component.
func (f *Func) Name() string { return f.ComponentName }

// Start implements Component.
func (f *Func) Start(ctx context.Context, fail func(error)) error {
	// Only Stop ends the component: the Runner stops components one by
	// one in reverse order, which a shared cancellation would defeat.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	f.mu.Lock()
	f.cancel, f.done = cancel, done
	f.mu.Unlock()
	go func() {
		defer close(done)
		err := f.Run(cctx)
		if cctx.Err() == nil {
			fail(err)
		}
	}()
	return nil
}

// Ready implements Component.
func (f *Func) Ready(ctx context.Context) error {
	if f.ReadyWhen != nil {
		select {
		case <-f.ReadyWhen:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.ReadyCheck == nil {
		return nil
	}
	interval := f.PollInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	var last error
	for {
		if last = f.ReadyCheck(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(interval):
		}
	}
}

// Stop implements Component.
func (f *Func) Stop(ctx context.Context) error {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	var wait <-chan time.Time
	if f.StopWait > 0 {
		wait = time.After(f.StopWait)
	}
	select {
	case <-done:
		return nil
	case <-wait:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not stop in time")
	}
}

// Lazy builds its component at Start, for components whose configuration
// depends on what an earlier component produced (the API server needs the
// datastore's endpoint).
type Lazy struct {
	ComponentName string
	Build         func() (Component, error)

	mu    sync.Mutex
	inner Component
}

// Name implements Component.
func (l *Lazy) Name() string { return l.ComponentName }

// Start implements Component.
func (l *Lazy) Start(ctx context.Context, fail func(error)) error {
	c, err := l.Build()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.inner = c
	l.mu.Unlock()
	return c.Start(ctx, fail)
}

// Ready implements Component.
func (l *Lazy) Ready(ctx context.Context) error {
	l.mu.Lock()
	c := l.inner
	l.mu.Unlock()
	return c.Ready(ctx)
}

// Stop implements Component.
func (l *Lazy) Stop(ctx context.Context) error {
	l.mu.Lock()
	c := l.inner
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Stop(ctx)
}

// Step is a one-shot piece of start-up work (host setup, writing files) that
// must finish before the next component starts.
type Step struct {
	StepName string
	Do       func(ctx context.Context) error
}

// Name implements Component.
func (s *Step) Name() string { return s.StepName }

// Start implements Component: it runs the step to completion.
func (s *Step) Start(ctx context.Context, _ func(error)) error { return s.Do(ctx) }

// Ready implements Component.
func (s *Step) Ready(context.Context) error { return nil }

// Stop implements Component.
func (s *Step) Stop(context.Context) error { return nil }
