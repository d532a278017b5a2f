package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Concurrent runs independent lines of components side by side: each line
// starts in order, as a Runner would, while the other lines start too; it is
// ready once every line is. The start-up of a node's host (containerd,
// system images) thus overlaps the control plane's instead of waiting for
// it. A failure in any line is reported, named, through fail.
type Concurrent struct {
	ComponentName string
	Lines         [][]Component
	Log           Logger
	Phases        *Phases // records each component's readiness; nil for none
	// StopTimeout bounds each component's Stop; default 15s.
	StopTimeout time.Duration

	mu      sync.Mutex
	cancel  context.CancelFunc // ends the lines' start-up, for Stop
	started [][]Component      // per line, what started
	ready   chan struct{}      // closed when every line is ready
	err     error              // why a line did not become ready
}

// Name implements Component.
func (c *Concurrent) Name() string { return c.ComponentName }

// Init implements Initializer: every line's components, before any starts.
func (c *Concurrent) Init(ctx context.Context) error {
	for _, line := range c.Lines {
		if err := initAll(ctx, line); err != nil {
			return err
		}
	}
	return nil
}

// Start implements Component: every line starts in the background.
func (c *Concurrent) Start(ctx context.Context, fail func(error)) error {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.started = make([][]Component, len(c.Lines))
	c.ready = make(chan struct{})
	c.err = nil
	c.cancel = cancel
	c.mu.Unlock()
	var wg sync.WaitGroup
	for i, line := range c.Lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.startLine(ctx, i, line, fail); err != nil {
				c.mu.Lock()
				if c.err == nil {
					c.err = err
				}
				c.mu.Unlock()
			}
		}()
	}
	go func() {
		wg.Wait()
		close(c.ready)
	}()
	return nil
}

// startLine starts line's components in order, each once the one before it
// is ready.
func (c *Concurrent) startLine(ctx context.Context, i int, line []Component, fail func(error)) error {
	for _, comp := range line {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := comp.Name()
		t0 := time.Now()
		err := comp.Start(ctx, func(err error) {
			if err == nil {
				err = errors.New("exited unexpectedly")
			}
			fail(fmt.Errorf("%s: %w", name, err))
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = fmt.Errorf("%s: %w", name, err)
			fail(err)
			return err
		}
		c.mu.Lock()
		c.started[i] = append(c.started[i], comp)
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = comp.Ready(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = fmt.Errorf("%s did not become ready: %w", name, err)
			fail(err)
			return err
		}
		c.Phases.Ready(name)
		if c.Log != nil {
			c.Log.Infof("%s ready after %s", name, time.Since(t0).Round(time.Millisecond))
		}
	}
	return nil
}

// Ready implements Component: it waits for every line.
func (c *Concurrent) Ready(ctx context.Context) error {
	c.mu.Lock()
	ready := c.ready
	c.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stop implements Component: lines still starting give up, then each line
// stops in reverse order, the lines one after the other, the last first.
func (c *Concurrent) Stop(ctx context.Context) error {
	c.mu.Lock()
	cancel, ready := c.cancel, c.ready
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-ready:
	case <-ctx.Done():
	}
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	timeout := c.StopTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		for j := len(started[i]) - 1; j >= 0; j-- {
			comp := started[i][j]
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			if err := comp.Stop(sctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", comp.Name(), err))
			}
			cancel()
		}
	}
	return errors.Join(errs...)
}
