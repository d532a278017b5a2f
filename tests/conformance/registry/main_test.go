package main

import "testing"

func TestSplitName(t *testing.T) {
	for _, c := range []struct {
		name, repo, tag string
		ok              bool
	}{
		{"registry.k8s.io/e2e-test-images/agnhost:2.55", "e2e-test-images/agnhost", "2.55", true},
		{"registry.k8s.io/pause:3.10.2", "pause", "3.10.2", true},
		{"registry.k8s.io/etcd:3.7.0-0", "etcd", "3.7.0-0", true},
		{"gcr.io/k8s-authenticated-test/agnhost:2.6", "", "", false},
		{"registry.k8s.io/no-tag", "", "", false},
		{"registry.k8s.iox/pause:1", "", "", false},
	} {
		repo, tag, ok := splitName(c.name, "registry.k8s.io")
		if repo != c.repo || tag != c.tag || ok != c.ok {
			t.Errorf("splitName(%q) = %q, %q, %v; want %q, %q, %v", c.name, repo, tag, ok, c.repo, c.tag, c.ok)
		}
	}
}
