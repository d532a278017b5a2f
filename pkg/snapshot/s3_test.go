package snapshot

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/kubox-io/kubox/pkg/config"
)

// s3Server is an S3-compatible server on loopback with one bucket.
func s3Server(t *testing.T, bucket string) *config.S3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(ts.Close)
	return &config.S3{Endpoint: strings.TrimPrefix(ts.URL, "http://"), Insecure: true, AccessKey: "kubox", SecretKey: "secret",
		Bucket: bucket, Region: config.DefaultS3Region, Folder: "site-a", Timeout: 30 * time.Second}
}

func TestS3(t *testing.T) {
	ctx := context.Background()
	f := seeded(t)
	p, clock, s, stop := f.p, *f.clock, f.s, f.stop
	s.S3 = s3Server(t, "snaps")
	var saved []Meta
	for i := 0; i < 3; i++ {
		m, err := s.Save(ctx, "scheduled")
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, m)
	}
	stop()
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var locs []string
	for _, m := range list {
		locs = append(locs, m.Location)
		if strings.HasPrefix(m.Location, "s3://") && m.SHA256 != saved[0].SHA256 && m.Name == saved[0].Name {
			t.Errorf("S3 copy of %s lists sha256 %s, saved %s", m.Name, m.SHA256, saved[0].SHA256)
		}
	}
	want := "s3://snaps/site-a/" + saved[2].Name
	if len(list) != 6 || list[5].Location != want {
		t.Fatalf("listed %v; want 3 local and 3 in S3, ending with %s", locs, want)
	}

	// Retention applies to the bucket as to the directory.
	deleted, err := s.Prune(ctx, "scheduled", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 2 || !strings.HasPrefix(deleted[1], "s3://snaps/site-a/"+saved[0].Name) {
		t.Fatalf("pruned %v", deleted)
	}

	// A snapshot only in S3 is fetched and restored.
	if _, err := s.deleteLocal(saved[2].Name); err != nil {
		t.Fatal(err)
	}
	path, err := s.Fetch(ctx, saved[2].Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreSQLite(ctx, path, p.SQLiteFile, clock); err != nil {
		t.Fatal(err)
	}
	cli, stopAgain := kine(t, p)
	defer stopAgain()
	if v, ok := get(t, cli, "/registry/a"); !ok || v != "A" {
		t.Fatalf("after a restore from S3: %q, %v", v, ok)
	}

	if err := s.Delete(ctx, saved[1].Name); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, saved[1].Name); err == nil {
		t.Fatal("deleted twice")
	}

	// A bucket that does not exist: the local snapshot stays, the error
	// says where the upload failed.
	s.S3.Bucket = "missing"
	m, err := s.Save(ctx, "on-demand")
	if err == nil || !strings.Contains(err.Error(), "saved in") || !strings.Contains(err.Error(), "s3://missing/site-a") {
		t.Fatalf("upload to a missing bucket: %v", err)
	}
	if _, err := os.Stat(m.Path); err != nil {
		t.Fatalf("the local snapshot went with the failed upload: %v", err)
	}
}
