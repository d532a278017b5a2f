package main

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestReadySince: only a Ready status whose heartbeat is from this start
// counts; one left from before a restart, or NotReady, does not.
func TestReadySince(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 400e6, time.UTC)
	node := func(status corev1.ConditionStatus, hb time.Time) *corev1.Node {
		return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(hb)},
			{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.NewTime(hb.Truncate(time.Second))},
		}}}
	}
	for _, c := range []struct {
		what string
		node *corev1.Node
		want bool
	}{
		{"Ready, heartbeat 7 s after the start", node(corev1.ConditionTrue, t0.Add(7*time.Second)), true},
		{"Ready, heartbeat from before the restart", node(corev1.ConditionTrue, t0.Add(-8*time.Second)), false},
		{"Ready, heartbeat in the start's own second", node(corev1.ConditionTrue, t0.Add(100*time.Millisecond)), false},
		{"NotReady, fresh heartbeat", node(corev1.ConditionFalse, t0.Add(7*time.Second)), false},
		{"no Ready condition", &corev1.Node{}, false},
	} {
		if got := readySince(c.node, t0); got != c.want {
			t.Errorf("%s: %v, want %v", c.what, got, c.want)
		}
	}
}

// TestParsePhases: only kubox_startup_phase_seconds samples count, by
// their phase label.
func TestParsePhases(t *testing.T) {
	text := `# HELP kubox_startup_phase_seconds Seconds from the process's start until the component was first ready.
# TYPE kubox_startup_phase_seconds gauge
kubox_startup_phase_seconds{phase="api-server"} 2.31
kubox_startup_phase_seconds{phase="kubelet"} 4.5e+00
kubox_startup_phase_seconds_other{phase="x"} 1
apiserver_request_total{code="200"} 12
`
	got := parsePhases(text)
	if len(got) != 2 || got["api-server"] != 2.31 || got["kubelet"] != 4.5 {
		t.Fatalf("parsePhases = %v", got)
	}
	if parsePhases("apiserver_request_total 1\n") != nil {
		t.Fatal("phases from a text with none")
	}
}
