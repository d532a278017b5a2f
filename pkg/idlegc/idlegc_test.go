package idlegc

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

// targetOnceStarted runs the component from the default target and
// returns the target it set, restoring the process's own afterwards.
func targetOnceStarted(t *testing.T) int {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	c := Component()
	if err := c.Start(ctx, func(error) {}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	got := debug.SetGCPercent(100) // returns the target it replaces
	cancel()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLowersTarget(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if got := targetOnceStarted(t); got != Percent {
		t.Errorf("GC target %d once started, want %d", got, Percent)
	}
}

func TestUserChoiceWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	if got := targetOnceStarted(t); got != 100 {
		t.Errorf("GC target %d with the user's GOGC=100, want it left alone", got)
	}
}

// A process that stops before its delay keeps its GC target.
func TestRunStopsEarly(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, time.Hour); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once its context ended")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC target %d after an early stop, want 100 left alone", got)
	}
}
