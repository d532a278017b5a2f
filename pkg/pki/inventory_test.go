package pki

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInventory(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := EnsureControlPlane(dir, baseSANs(), 0, 120*24*time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	certs, err := Inventory(dir, filepath.Join(dir, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range certs {
		issuer, _, _ := strings.Cut(c.Issuer, "@")
		got = append(got, c.Name+"<"+issuer)
		// Leaves last a year, CAs ten.
		if c.DaysLeft(t0) < 364 || (!c.CA && c.DaysLeft(t0.AddDate(2, 0, 0)) >= 0) || (c.CA && c.DaysLeft(t0) < 3649) {
			t.Errorf("%s: %d days left at issue, %d two years on", c.Name, c.DaysLeft(t0), c.DaysLeft(t0.AddDate(2, 0, 0)))
		}
	}
	want := "client-admin<kubox-client-ca client-auth-proxy<kubox-request-header-ca client-ca<kubox-client-ca " +
		"client-controller<kubox-client-ca client-kube-apiserver<kubox-client-ca client-scheduler<kubox-client-ca " +
		"kubelet-ca<kubox-kubelet-ca request-header-ca<kubox-request-header-ca server-ca<kubox-server-ca " +
		"serving-kube-apiserver<kubox-server-ca"
	if strings.Join(got, " ") != want {
		t.Fatalf("inventory:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
