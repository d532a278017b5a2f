package idlegc

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// BusyRate is the allocation rate, in bytes per second, above which the
// node counts as busy: an idle node allocates a few MB/s, a node serving
// a burst of API writes or pod starts a hundred or more. While busy, the
// GC target returns to Go's default, so that collections do not take a
// fifth of the CPU the burst needs; once the rate has stayed low for
// calmSamples samples in a row, the tight target comes back.
const BusyRate = 24 << 20

const (
	sampleEvery = 2 * time.Second
	calmSamples = 5
	busyPercent = 100
)

// policy is the GC target chosen from the allocation rate, with a
// hysteresis: busy at once, idle only after a calm spell.
type policy struct {
	percent int // the target in force
	calm    int // samples in a row below BusyRate/2
}

// next returns the target for an allocation rate, and whether it changed.
func (p *policy) next(rate float64) (int, bool) {
	switch {
	case rate >= BusyRate:
		p.calm = 0
		if p.percent != busyPercent {
			p.percent = busyPercent
			return p.percent, true
		}
	case rate < BusyRate/2:
		p.calm++
		if p.percent != Percent && p.calm >= calmSamples {
			p.percent = Percent
			return p.percent, true
		}
	default:
		p.calm = 0
	}
	return p.percent, false
}

// allocRate returns what reads the process's allocation rate, in bytes
// per second, since its last call (or its making).
func allocRate() func() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	last, lastAt := s[0].Value.Uint64(), time.Now()
	return func() float64 {
		metrics.Read(s)
		total, now := s[0].Value.Uint64(), time.Now()
		secs := now.Sub(lastAt).Seconds()
		rate := 0.0
		if secs > 0 {
			rate = float64(total-last) / secs
		}
		last, lastAt = total, now
		return rate
	}
}

// waitCalm returns once rate, read every interval, has stayed below
// BusyRate/2 for n reads in a row; false when ctx ends first. The
// executable's release waits on it: a node busy at the settle time has
// its hot code resident, and dropping it then would have every path of
// the busy work read back from the file a page per fault.
func waitCalm(ctx context.Context, every time.Duration, n int, rate func() float64) bool {
	t := time.NewTicker(every)
	defer t.Stop()
	for calm := 0; calm < n; {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			if rate() < BusyRate/2 {
				calm++
			} else {
				calm = 0
			}
		}
	}
	return true
}

// adapt sets the GC target from the allocation rate until ctx ends,
// starting from Percent.
func adapt(ctx context.Context, logf func(format string, args ...any)) {
	p := policy{percent: Percent}
	rate := allocRate()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rate := rate()
			if percent, changed := p.next(rate); changed {
				debug.SetGCPercent(percent)
				logf("allocating %.0f MB/s: GC target %d%%", rate/1e6, percent)
			}
		}
	}
}
