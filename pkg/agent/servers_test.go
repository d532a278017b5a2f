package agent

import (
	"reflect"
	"testing"
)

// TestAddresses: the balancer gets host:port for every API server, with
// the node's --server last when the cluster does not list it.
func TestAddresses(t *testing.T) {
	got := addresses([]string{"https://10.0.0.2:6443", "https://[fd00::3]:6443", "::bad"}, "10.0.0.1:6443")
	want := []string{"10.0.0.2:6443", "[fd00::3]:6443", "10.0.0.1:6443"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := addresses([]string{"https://10.0.0.1:6443"}, "10.0.0.1:6443"); len(got) != 1 {
		t.Errorf("the --server listed by the cluster appears twice: %v", got)
	}
	if !sameSet([]string{"a", "b"}, []string{"b", "a"}) || sameSet([]string{"a"}, []string{"a", "b"}) {
		t.Error("sameSet")
	}
}
