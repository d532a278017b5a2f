// Package flock takes advisory file locks (flock(2)) that serialize kubox
// processes sharing a data dir: one holder at a time, released when the
// holder exits, however it exits.
package flock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrHeld is returned by TryExclusive when another process holds the lock.
var ErrHeld = errors.New("lock held by another process")

// Exclusive waits for an exclusive lock on path (created 0600 if missing)
// and returns its release.
func Exclusive(path string) (func(), error) { return take(path, syscall.LOCK_EX) }

// TryExclusive takes an exclusive lock on path without waiting; ErrHeld
// when another process has it.
func TryExclusive(path string) (func(), error) {
	return take(path, syscall.LOCK_EX|syscall.LOCK_NB)
}

func take(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, ErrHeld
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // Close releases it anyway
		f.Close()
	}, nil
}
