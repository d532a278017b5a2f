package component

import (
	"sync"
	"time"
)

// Phases records when each component became ready, counted from the
// process's start: the start-up's timeline, for kubox_startup_phase_seconds.
// A nil *Phases records nothing.
type Phases struct {
	start time.Time
	mu    sync.Mutex
	list  []Phase
}

// Phase is one component's readiness, in seconds since the start.
type Phase struct {
	Name    string
	Seconds float64
}

// NewPhases starts a timeline at start.
func NewPhases(start time.Time) *Phases { return &Phases{start: start} }

// Ready records that name is ready now; a restart of the same component
// keeps its first time.
func (p *Phases) Ready(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ph := range p.list {
		if ph.Name == name {
			return
		}
	}
	p.list = append(p.list, Phase{Name: name, Seconds: time.Since(p.start).Seconds()})
}

// List returns the phases in the order they became ready.
func (p *Phases) List() []Phase {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Phase(nil), p.list...)
}
