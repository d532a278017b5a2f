package snapshot

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kubox-io/kubox/pkg/config"
)

// Logger is where scheduled snapshots report.
type Logger interface {
	Infof(format string, args ...any)
	Errorf(format string, args ...any)
}

// RunScheduled takes a snapshot named config.ScheduledSnapshotName at each
// time sched gives, keeping the newest keep of them, until ctx ends. A
// failed snapshot is logged and the schedule goes on: the datastore keeps
// serving either way.
func (s Store) RunScheduled(ctx context.Context, sched cron.Schedule, keep int, log Logger) error {
	for {
		timer := time.NewTimer(time.Until(sched.Next(time.Now())))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		m, err := s.Save(ctx, config.ScheduledSnapshotName)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Errorf("scheduled snapshot failed: %v", err)
			continue
		}
		log.Infof("saved snapshot %s (%d bytes) in %s", m.Name, m.Size, s.Dir)
		deleted, err := s.Prune(ctx, config.ScheduledSnapshotName, keep)
		if err != nil {
			log.Errorf("cannot prune scheduled snapshots: %v", err)
		}
		for _, d := range deleted {
			log.Infof("removed snapshot %s (retention %d)", d, keep)
		}
	}
}
