package dnscustom

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type nopLog struct{}

func (nopLog) Infof(string, ...any) {}
func (nopLog) Warnf(string, ...any) {}

func TestHash(t *testing.T) {
	a := &corev1.ConfigMap{Data: map[string]string{"a.override": "hosts {\n 1.2.3.4 x\n}", "b.server": "y"}}
	b := &corev1.ConfigMap{Data: map[string]string{"b.server": "y", "a.override": "hosts {\n 1.2.3.4 x\n}"}}
	c := &corev1.ConfigMap{Data: map[string]string{"a.override": "hosts {\n 1.2.3.5 x\n}", "b.server": "y"}}
	// Key/value boundaries count: moving a character across them changes the hash.
	d := &corev1.ConfigMap{Data: map[string]string{"ab": "c"}}
	e := &corev1.ConfigMap{Data: map[string]string{"a": "bc"}}
	if Hash(a) != Hash(b) {
		t.Error("hash depends on map order")
	}
	if Hash(a) == Hash(c) || Hash(d) == Hash(e) {
		t.Error("different content, same hash")
	}
	if Hash(nil) != "" || Hash(&corev1.ConfigMap{}) != "" {
		t.Error("no content should hash to empty")
	}
}

func TestRolls(t *testing.T) {
	client := fake.NewSimpleClientset(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: Deployment, Namespace: Namespace}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, client, nopLog{}) }()

	annotation := func() string {
		d, err := client.AppsV1().Deployments(Namespace).Get(ctx, Deployment, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations[HashAnnotation]
	}
	wait := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(annotation()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; annotation %q", what, annotation())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	time.Sleep(200 * time.Millisecond)
	if got := annotation(); got != "" {
		t.Fatalf("no coredns-custom, yet the template carries %q", got)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMap, Namespace: Namespace},
		Data: map[string]string{"x.override": "hosts { 1.2.3.4 a.test }"}}
	if _, err := client.CoreV1().ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("the hash after create", func(a string) bool { return a == Hash(cm) })
	first := annotation()
	cm.Data["x.override"] = "hosts { 1.2.3.5 a.test }"
	if _, err := client.CoreV1().ConfigMaps(Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("the hash after update", func(a string) bool { return a != first && a == Hash(cm) })
	if err := client.CoreV1().ConfigMaps(Namespace).Delete(ctx, ConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("the annotation removed", func(a string) bool { return a == "" })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
