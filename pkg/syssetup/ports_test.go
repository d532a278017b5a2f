package syssetup

import (
	"net"
	"strings"
	"testing"
)

// TestPorts: a port another program holds is reported in use, with the
// command that shows who holds it; the line is optional.
func TestPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:6444")
	if err != nil {
		t.Skipf("cannot hold port 6444 for the test: %v", err)
	}
	defer l.Close()
	var found bool
	for _, r := range Ports() {
		if r.ID != "port-6444" {
			continue
		}
		found = true
		if r.OK || r.Fatal || !strings.Contains(r.Fix, "ss -ltnp 'sport = :6444'") {
			t.Errorf("port 6444 held: %+v", r)
		}
	}
	if !found {
		t.Error("no port-6444 line")
	}
}
