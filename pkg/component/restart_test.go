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

// TestConcurrent: lines start side by side, each in order; the group is
// ready once both are; stop runs each line in reverse.
func TestConcurrent(t *testing.T) {
	rec := &recorder{}
	readyA1, readyB1 := make(chan struct{}), make(chan struct{})
	always := make(chan struct{})
	close(always)
	a1, a2 := fn(rec, "a1", readyA1, nil), fn(rec, "a2", always, nil)
	b1 := fn(rec, "b1", readyB1, nil)
	after := fn(rec, "after", always, nil)
	c := &Concurrent{ComponentName: "both", Lines: [][]Component{{a1, a2}, {b1}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Runner{}).Run(ctx, c, after) }()
	waitUntil(t, "both lines to start", func() bool {
		return strings.Contains(rec.String(), "start:a1") && strings.Contains(rec.String(), "start:b1")
	})
	close(readyB1)
	waitUntil(t, "b1 ready", func() bool { return strings.Contains(rec.String(), "ready:b1") })
	if strings.Contains(rec.String(), "start:a2") || strings.Contains(rec.String(), "start:after") {
		t.Fatalf("a2 or after started before a1 was ready: %s", rec)
	}
	close(readyA1)
	waitUntil(t, "after to start", func() bool { return strings.Contains(rec.String(), "start:after") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := rec.String()
	stops := got[strings.Index(got, "stop:"):]
	if stops != "stop:after stop:b1 stop:a2 stop:a1" {
		t.Errorf("stopped %q, want after, then b1, then a2 and a1", stops)
	}
}

// TestConcurrentFailure: a line that fails to start stops the runner with
// the component's name.
func TestConcurrentFailure(t *testing.T) {
	rec := &recorder{}
	always := make(chan struct{})
	close(always)
	bad := &Lazy{ComponentName: "bad", Build: func() (Component, error) { return nil, errors.New("port in use") }}
	c := &Concurrent{ComponentName: "both", Lines: [][]Component{{fn(rec, "a", always, nil)}, {bad}}}
	err := (&Runner{}).Run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "bad: port in use") {
		t.Fatalf("err = %v", err)
	}
	// The other line may not have started a before the failure ended the
	// start-up; whatever it started must have been stopped by now.
	if got := rec.String(); strings.Contains(got, "start:a") && !strings.Contains(got, "stop:a") {
		t.Errorf("a started but was not stopped: %s", got)
	}
}
