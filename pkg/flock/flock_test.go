package flock

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestTryExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	release, err := TryExclusive(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description is a second holder, as another
	// process would be.
	if _, err := TryExclusive(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("second lock: got %v, want ErrHeld", err)
	}
	release()
	again, err := Exclusive(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

func TestMissingDir(t *testing.T) {
	if _, err := TryExclusive(filepath.Join(t.TempDir(), "no", "lock")); err == nil {
		t.Fatal("lock in a missing directory succeeded")
	}
}
