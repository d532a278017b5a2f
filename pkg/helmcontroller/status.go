package helmcontroller

import (
	"reflect"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// status is a HelmChart's status: where its release is, which revision
// is deployed, and two conditions, Installed (a revision is deployed) and
// Failed (the last attempt failed, with the error as message).
type status struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	TargetNamespace    string      `json:"targetNamespace,omitempty"`
	Revision           int64       `json:"revision,omitempty"`
	Conditions         []condition `json:"conditions,omitempty"`
}

type condition struct {
	Type               string                 `json:"type"`
	Status             metav1.ConditionStatus `json:"status"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
}

func readStatus(u *unstructured.Unstructured) *status {
	st := &status{}
	if m, ok, _ := unstructured.NestedMap(u.Object, "status"); ok {
		_ = runtime.DefaultUnstructuredConverter.FromUnstructured(m, st) // a foreign status starts afresh
	}
	return st
}

func (s *status) toUnstructured() map[string]any {
	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	return m
}

func (s *status) clone() *status {
	c := *s
	c.Conditions = slices.Clone(s.Conditions)
	return &c
}

func (s *status) equal(o *status) bool { return reflect.DeepEqual(s, o) }

func (s *status) condition(typ string) *condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// setCondition sets a condition; its transition time moves only when its
// status does.
func (s *status) setCondition(typ string, st metav1.ConditionStatus, reason, msg string, now metav1.Time) {
	c := s.condition(typ)
	if c == nil {
		s.Conditions = append(s.Conditions, condition{Type: typ})
		c = &s.Conditions[len(s.Conditions)-1]
	}
	if c.Status != st {
		c.LastTransitionTime = now
	}
	c.Status, c.Reason, c.Message = st, reason, msg
}
