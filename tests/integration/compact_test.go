package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestListContinueExpires: on SQLite, history older than the compaction
// interval is compacted however quiet the cluster, so a list's continue
// token that old is answered 410 Gone (with a token to go on from now), as
// the API server does on etcd.
func TestListContinueExpires(t *testing.T) {
	s := newServer(t, "--datastore-compact-interval", "3s")
	s.StartReady()
	ctx := context.Background()
	cs := s.Client()
	for i := 0; i < 6; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("page-%d", i)}}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || first.Continue == "" {
		t.Fatalf("first page: %v, continue %q", err, first.Continue)
	}
	// One write, then quiet: two compaction intervals later the revision
	// the token holds is compacted.
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last error
	waitFor(t, "the continue token to expire", 2*time.Minute, func() (bool, string) {
		_, last = cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{Limit: 2, Continue: first.Continue})
		return apierrors.IsResourceExpired(last) || apierrors.IsGone(last), fmt.Sprint(last)
	})
	if st, ok := last.(apierrors.APIStatus); !ok || st.Status().ListMeta.Continue == "" {
		t.Errorf("the 410 carries no continue token to go on with: %v", last)
	}
}
