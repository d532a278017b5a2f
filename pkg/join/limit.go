package join

import (
	"sync"
	"time"
)

// limiter counts failed attempts per source address in fixed windows: a
// source that reaches the limit waits for its window to end. It bounds how
// fast anyone can guess tokens without slowing a node that gets it right.
type limiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	fails map[string]failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

// maxSources bounds the table; beyond it, windows that ended are dropped.
const maxSources = 4096

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window, fails: map[string]failWindow{}}
}

// blocked says how long source must wait, and ok when it need not.
func (l *limiter) blocked(source string, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, found := l.fails[source]
	if !found || f.n < l.limit {
		return 0, true
	}
	end := f.start.Add(l.window)
	if !now.Before(end) {
		delete(l.fails, source)
		return 0, true
	}
	return end.Sub(now), false
}

// fail records a failed attempt from source.
func (l *limiter) fail(source string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, found := l.fails[source]
	if !found || !now.Before(f.start.Add(l.window)) {
		if len(l.fails) >= maxSources {
			for k, v := range l.fails {
				if !now.Before(v.start.Add(l.window)) {
					delete(l.fails, k)
				}
			}
		}
		f = failWindow{start: now}
	}
	f.n++
	l.fails[source] = f
}
