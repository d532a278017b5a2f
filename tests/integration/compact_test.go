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

// TestListContinueExpires: on SQLite, the API server compacts the history
// every --datastore-compact-interval to the revision of one interval
// before, however quiet the cluster, as it does on etcd. So a list's
// continue token that old is answered 410 Gone with a token to go on from
// now, and that token lists the rest (the conformance suite's chunking
// spec, in seconds instead of ten minutes).
func TestListContinueExpires(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	s := newServer(t, "--datastore-compact-interval", "3s")
	s.StartReady()
	ctx := context.Background()
	cms := s.Client().CoreV1().ConfigMaps("default")
	for i := 0; i < 6; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("page-%d", i)}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := cms.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || first.Continue == "" {
		t.Fatalf("first page: %v, continue %q", err, first.Continue)
	}
	// One write, then quiet.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "page-9"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last error
	waitFor(t, "the continue token to expire", 2*time.Minute, func() (bool, string) {
		_, last = cms.List(ctx, metav1.ListOptions{Limit: 2, Continue: first.Continue})
		return apierrors.IsResourceExpired(last) || apierrors.IsGone(last), fmt.Sprint(last)
	})
	st, ok := last.(apierrors.APIStatus)
	if !ok || st.Status().ListMeta.Continue == "" {
		t.Fatalf("the 410 carries no continue token to go on with: %v", last)
	}
	// The token from the 410 lists the rest, as of now (page-9 included).
	var names []string
	opts := metav1.ListOptions{Limit: 2, Continue: st.Status().ListMeta.Continue}
	for {
		page, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatalf("listing on with the token from the 410: %v", err)
		}
		if page.ResourceVersion == first.ResourceVersion {
			t.Errorf("a page after the 410 is at the expired resource version %s", page.ResourceVersion)
		}
		for _, cm := range page.Items {
			names = append(names, cm.Name)
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			break
		}
	}
	// What follows the first page's last name, by name; kube-root-ca.crt
	// may be on the first page or not, depending on when it was published.
	var want []string
	for _, n := range []string{"page-0", "page-1", "page-2", "page-3", "page-4", "page-5", "page-9"} {
		if n > first.Items[len(first.Items)-1].Name {
			want = append(want, n)
		}
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("the pages after the 410 hold %v, want %v", names, want)
	}
}
