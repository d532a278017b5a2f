package join

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCheckClock: a joining server whose clock is off by more than
// MaxClockSkew is refused in one line that says by how much and which way.
func TestCheckClock(t *testing.T) {
	server := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	date := server.Format(http.TimeFormat)
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{server.Add(2 * time.Second), ""},
		{server.Add(-9 * time.Second), ""},
		{server.Add(42 * time.Second), "42s ahead of https://s1:6443's"},
		{server.Add(-5 * time.Minute), "5m0s behind"},
	} {
		err := checkClock(date, c.now, "https://s1:6443")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s off: %v", c.now.Sub(server), err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "sync them")):
			t.Errorf("%s off: got %v, want %q", c.now.Sub(server), err, c.want)
		}
	}
	if err := checkClock("", server, "x"); err != nil {
		t.Errorf("no Date header: %v", err)
	}
}

// TestClockSkew: the skew is read from the server's Date header, from the
// CA bundle's path that needs no trust yet.
func TestClockSkew(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != cacertsPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Date", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
	}))
	defer srv.Close()
	skew, base, err := ClockSkew(context.Background(), srv.URL, 5*time.Second)
	if err != nil || base != srv.URL {
		t.Fatalf("ClockSkew: %v (base %q)", err, base)
	}
	if skew < time.Hour-2*time.Second || skew > time.Hour+2*time.Second {
		t.Errorf("skew %s, want about 1h", skew)
	}
	if got := DescribeSkew(skew, base); !strings.Contains(got, "ahead of "+srv.URL) {
		t.Errorf("DescribeSkew: %q", got)
	}
	if _, _, err := ClockSkew(context.Background(), "http://x", time.Second); err == nil || !strings.Contains(err.Error(), "invalid --server") {
		t.Errorf("a URL that is not https: %v", err)
	}
}
