package component

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

func fn(rec *recorder, name string, ready chan struct{}, runErr chan error) *Func {
	return &Func{
		ComponentName: name,
		Run: func(ctx context.Context) error {
			rec.add("start:" + name)
			select {
			case <-ctx.Done():
				rec.add("stop:" + name)
				return nil
			case err := <-runErr:
				return err
			}
		},
		ReadyCheck: func(ctx context.Context) error {
			select {
			case <-ready:
				rec.add("ready:" + name)
				return nil
			default:
				return errors.New("not yet")
			}
		},
		PollInterval: time.Millisecond,
	}
}

// TestOrder: b starts only after a is ready; stop runs in reverse.
func TestOrder(t *testing.T) {
	rec := &recorder{}
	readyA, readyB := make(chan struct{}), make(chan struct{})
	a := fn(rec, "a", readyA, nil)
	b := fn(rec, "b", readyB, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- (&Runner{}).Run(ctx, a, b) }()
	// a runs and is polled for readiness, which only closing readyA gives.
	waitUntil(t, "a to start", func() bool { return strings.Contains(rec.String(), "start:a") })
	if strings.Contains(rec.String(), "start:b") {
		t.Fatalf("b started before a was ready: %s", rec)
	}
	close(readyA)
	waitUntil(t, "b to start", func() bool { return strings.Contains(rec.String(), "start:b") })
	close(readyB)
	waitUntil(t, "b to be ready", func() bool { return strings.Contains(rec.String(), "ready:b") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop returned %v", err)
	}
	want := "start:a ready:a start:b ready:b stop:b stop:a"
	if got := rec.String(); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestFailure: a component failing at runtime ends Run with its error,
// named, and stops the others.
func TestFailure(t *testing.T) {
	rec := &recorder{}
	ready := make(chan struct{})
	close(ready)
	fail := make(chan error, 1)
	a := fn(rec, "a", ready, nil)
	b := fn(rec, "b", ready, fail)
	done := make(chan error)
	go func() { done <- (&Runner{}).Run(context.Background(), a, b) }()
	waitUntil(t, "b to run", func() bool { return strings.Contains(rec.String(), "start:b") })
	fail <- errors.New("disk full")
	select {
	case err := <-done:
		if err == nil || err.Error() != "b: disk full" {
			t.Fatalf("Run returned %v, want \"b: disk full\"", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after a component failed")
	}
	if !strings.Contains(rec.String(), "stop:a") {
		t.Fatalf("a was not stopped: %s", rec)
	}
}

// TestStartError: a start error is returned and earlier components stop.
func TestStartError(t *testing.T) {
	rec := &recorder{}
	ready := make(chan struct{})
	close(ready)
	a := fn(rec, "a", ready, nil)
	bad := &Lazy{ComponentName: "bad", Build: func() (Component, error) { return nil, errors.New("bad flag") }}
	err := (&Runner{}).Run(context.Background(), a, bad)
	if err == nil || err.Error() != "bad: bad flag" {
		t.Fatalf("Run returned %v", err)
	}
	if !strings.Contains(rec.String(), "stop:a") {
		t.Fatalf("a was not stopped: %s", rec)
	}
}

// TestStopWhileStarting: a stop request that interrupts a start-up step is
// a clean stop, not a failure.
func TestStopWhileStarting(t *testing.T) {
	rec := &recorder{}
	ready := make(chan struct{})
	close(ready)
	a := fn(rec, "a", ready, nil)
	entered := make(chan struct{})
	step := &Step{StepName: "slow", Do: func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return fmt.Errorf("creating something: %w", ctx.Err())
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- (&Runner{}).Run(ctx, a, step) }()
	<-entered
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after a stop during start-up", err)
	}
	if !strings.Contains(rec.String(), "stop:a") {
		t.Fatalf("a was not stopped: %s", rec)
	}
}

// initFails is a component whose Init fails.
type initFails struct {
	Step
}

func (initFails) Init(context.Context) error { return errors.New("bad setting") }

// TestInitBeforeStart: every Init runs before anything starts; one that
// fails starts nothing, and the error names its component, even inside a
// Concurrent line or a Restart.
func TestInitBeforeStart(t *testing.T) {
	for name, wrap := range map[string]func(Component) Component{
		"plain":      func(c Component) Component { return c },
		"restart":    func(c Component) Component { return &Restart{Inner: c} },
		"concurrent": func(c Component) Component { return &Concurrent{ComponentName: "both", Lines: [][]Component{{c}}} },
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			first := &Step{StepName: "first", Do: func(context.Context) error { rec.add("start:first"); return nil }}
			bad := wrap(&initFails{Step{StepName: "checked", Do: func(context.Context) error { rec.add("start:checked"); return nil }}})
			err := (&Runner{}).Run(context.Background(), first, bad)
			if err == nil || !strings.Contains(err.Error(), "checked: bad setting") {
				t.Fatalf("Run: %v, want the failing component named", err)
			}
			if rec.String() != "" {
				t.Fatalf("started before every Init passed: %s", rec)
			}
		})
	}
}

// TestReadyWhen: a Func with ReadyWhen is ready once the channel closes,
// and not before.
func TestReadyWhen(t *testing.T) {
	ready := make(chan struct{})
	f := &Func{ComponentName: "w", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }, ReadyWhen: ready}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.Ready(ctx); err == nil {
		t.Fatal("ready before its channel closed")
	}
	close(ready)
	if err := f.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after its channel closed: %v", err)
	}
}
