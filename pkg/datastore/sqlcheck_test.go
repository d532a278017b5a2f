package datastore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kubox-io/kubox/pkg/config"
)

// A Postgres or MySQL endpoint that is malformed or unreachable ends Start
// with one line naming it, the password masked.
func TestCheckSQL(t *testing.T) {
	addr := closedPort(t)
	for _, tc := range []struct {
		name, endpoint string
		want           []string
	}{
		{"postgres malformed", "postgres://kubox:s3cret@127.0.0.1:notaport/kubox",
			[]string{"invalid --datastore-endpoint postgres://kubox:***@127.0.0.1:notaport/kubox", "postgres://user:password@host:5432/database"}},
		{"mysql malformed", "mysql://kubox:s3cret@tcp(127.0.0.1:3306/kubox",
			[]string{"invalid --datastore-endpoint mysql://kubox:***@tcp(127.0.0.1:3306/kubox", "tcp(host:3306)"}},
		{"postgres unreachable", "postgres://kubox:s3cret@" + addr + "/kubox",
			[]string{"cannot reach the postgres datastore at postgres://kubox:***@" + addr + "/kubox within 500ms", "database is running"}},
		{"mysql unreachable", "mysql://kubox:s3cret@tcp(" + addr + ")/kubox",
			[]string{"cannot reach the mysql datastore at mysql://kubox:***@tcp(" + addr + ")/kubox within 500ms", "database is running"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(config.Datastore{Endpoint: tc.endpoint}, testPaths(t))
			d.ReachTimeout = 500 * time.Millisecond
			begin := time.Now()
			err := d.Start(context.Background(), func(error) {})
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if took := time.Since(begin); took > 5*time.Second {
				t.Errorf("Start took %s with ReachTimeout %s", took, d.ReachTimeout)
			}
			oneLine(t, err)
			msg := err.Error()
			if strings.Contains(msg, "s3cret") {
				t.Errorf("the error shows the password: %s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}
