package join

import (
	"net/http"
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
