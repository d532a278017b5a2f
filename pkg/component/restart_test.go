package component

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flaky is a component whose runs can be made to fail from the test.
type flaky struct {
	starts atomic.Int32
	fail   chan func(error)
	stops  atomic.Int32
}

func (f *flaky) Name() string { return "flaky" }
func (f *flaky) Start(_ context.Context, fail func(error)) error {
	f.starts.Add(1)
	f.fail <- fail
	return nil
}
func (f *flaky) Ready(context.Context) error { return nil }
func (f *flaky) Stop(context.Context) error  { f.stops.Add(1); return nil }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRestart: a supervised component that fails is started again and the
// runner goes on; one that keeps failing stops the runner with its name.
func TestRestart(t *testing.T) {
	f := &flaky{fail: make(chan func(error), 10)}
	r := &Restart{Inner: f, Backoff: time.Millisecond, MaxFailures: 3, Window: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- (&Runner{}).Run(ctx, r) }()

	(<-f.fail)(errors.New("killed"))
	waitUntil(t, "a restart", func() bool { return f.starts.Load() == 2 })
	select {
	case err := <-done:
		t.Fatalf("the runner ended after one failure of a supervised component: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if f.stops.Load() != 1 {
		t.Errorf("stopped %d times before the restart, want 1", f.stops.Load())
	}
	(<-f.fail)(errors.New("killed again"))
	waitUntil(t, "a second restart", func() bool { return f.starts.Load() == 3 })
	(<-f.fail)(errors.New("killed a third time"))
	select {
	case err := <-done:
		if err == nil || !strings.HasPrefix(err.Error(), "flaky: failed 3 times") || !strings.Contains(err.Error(), "killed a third time") {
			t.Fatalf("err = %v, want the component's name, the count and the last failure", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the runner goes on after the component failed MaxFailures times")
	}
}

// TestRestartStops: Stop ends supervision; a failure after it restarts
// nothing.
func TestRestartStops(t *testing.T) {
	f := &flaky{fail: make(chan func(error), 10)}
	r := &Restart{Inner: f, Backoff: time.Millisecond}
	if err := r.Start(context.Background(), func(error) { t.Error("failure passed on") }); err != nil {
		t.Fatal(err)
	}
	fail := <-f.fail
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	fail(errors.New("late"))
	time.Sleep(20 * time.Millisecond)
	if n := f.starts.Load(); n != 1 {
		t.Errorf("started %d times, want 1", n)
	}
}

// TestCancelDuringStart: once the context ends, no further component
// starts, and those started are stopped.
func TestCancelDuringStart(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	first := &Step{StepName: "first", Do: func(context.Context) error { rec.add("first"); cancel(); return nil }}
	second := &Step{StepName: "second", Do: func(context.Context) error { rec.add("second"); return nil }}
	if err := (&Runner{}).Run(ctx, first, second); err != nil {
		t.Fatal(err)
	}
	if got := rec.String(); got != "first" {
		t.Errorf("ran %q, want only first", got)
	}
}
