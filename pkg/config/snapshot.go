package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kubox-io/kubox/pkg/config/paths"
)

// Snapshot defaults, as a k3s user knows them from etcd-snapshot.
const (
	DefaultSnapshotSchedule  = "0 */12 * * *"
	DefaultSnapshotRetention = 5
	// DefaultSnapshotName prefixes on-demand snapshots; scheduled ones are
	// named ScheduledSnapshotName.
	DefaultSnapshotName   = "on-demand"
	ScheduledSnapshotName = "scheduled"
)

// SnapshotOptions are the raw snapshot flags of `kubox server` and
// `kubox snapshot`.
type SnapshotOptions struct {
	Dir       string
	Schedule  string
	Retention int
	Disable   bool
	S3        S3Options
}

// Snapshots is the validated snapshot configuration.
type Snapshots struct {
	// Dir holds the snapshot files and their metadata.
	Dir string
	// Schedule is a five-field cron expression; Disabled turns it off.
	Schedule  string
	Retention int
	Disabled  bool
	// S3, when set, receives a copy of every snapshot.
	S3 *S3
}

// Snapshots validates the options; the default directory is under p.
func (o SnapshotOptions) Snapshots(p paths.Paths) (Snapshots, error) {
	s := Snapshots{Dir: o.Dir, Schedule: o.Schedule, Retention: o.Retention, Disabled: o.Disable}
	if s.Dir == "" {
		s.Dir = p.SnapshotDir
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return s, fmt.Errorf("invalid --snapshot-dir %q: %v", s.Dir, err)
	}
	s.Dir = dir
	if s.Schedule == "" {
		s.Schedule = DefaultSnapshotSchedule
	}
	if _, err := ParseSchedule(s.Schedule); err != nil {
		return s, err
	}
	if s.S3, err = o.S3.S3(); err != nil {
		return s, err
	}
	switch {
	case s.Retention == 0:
		s.Retention = DefaultSnapshotRetention
	case s.Retention < 0:
		return s, fmt.Errorf("invalid --snapshot-retention %d: keep at least 1 snapshot", s.Retention)
	}
	return s, nil
}

// ParseSchedule parses a --snapshot-schedule-cron value (minute hour
// day-of-month month day-of-week, or a descriptor such as @hourly).
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid --snapshot-schedule-cron %q: %v; give five fields such as %q", spec, err, DefaultSnapshotSchedule)
	}
	return s, nil
}

var snapshotName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62})$`)

// CheckSnapshotName refuses a --name that would not make a plain file name.
func CheckSnapshotName(name string) error {
	if !snapshotName.MatchString(name) {
		return fmt.Errorf("invalid snapshot name %q: use lower-case letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", name)
	}
	return nil
}

// DefaultS3Endpoint and DefaultS3Region are Amazon's, as in k3s.
const (
	DefaultS3Endpoint = "s3.amazonaws.com"
	DefaultS3Region   = "us-east-1"
	DefaultS3Timeout  = 5 * time.Minute
)

// S3 is a bucket that also receives every snapshot.
type S3 struct {
	Endpoint   string // host[:port]
	EndpointCA string
	SkipVerify bool
	Insecure   bool // plain http
	AccessKey  string
	SecretKey  string
	Bucket     string
	Region     string
	Folder     string
	Timeout    time.Duration
}

// S3Options are the raw --snapshot-s3-* flags: the bucket's settings as
// given, and whether to use it at all.
type S3Options struct {
	Enable   bool
	Settings S3
}

// S3 validates the options; nil, nil when S3 is off.
func (o S3Options) S3() (*S3, error) {
	if !o.Enable {
		return nil, nil
	}
	s := o.Settings // a copy, completed below
	s.Folder = strings.Trim(s.Folder, "/")
	if s.Endpoint == "" {
		s.Endpoint = DefaultS3Endpoint
	}
	if strings.Contains(s.Endpoint, "://") || strings.Contains(s.Endpoint, "/") {
		return nil, fmt.Errorf("invalid --snapshot-s3-endpoint %q: give host[:port] only; use --snapshot-s3-insecure for plain http", s.Endpoint)
	}
	if s.Bucket == "" {
		return nil, fmt.Errorf("--snapshot-s3 needs --snapshot-s3-bucket")
	}
	if s.Region == "" {
		s.Region = DefaultS3Region
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultS3Timeout
	}
	if s.Timeout < 0 {
		return nil, fmt.Errorf("invalid --snapshot-s3-timeout %s: must be positive", s.Timeout)
	}
	if s.EndpointCA != "" {
		if _, err := os.Stat(s.EndpointCA); err != nil {
			return nil, fmt.Errorf("invalid --snapshot-s3-endpoint-ca: %v", err)
		}
	}
	return &s, nil
}
