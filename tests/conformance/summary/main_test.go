package main

import (
	"strings"
	"testing"
)

const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="2">
  <testsuite name="Kubernetes e2e suite" tests="5">
    <testcase name="[SynchronizedBeforeSuite]" status="passed" time="1"></testcase>
    <testcase name="[It] [sig-node] Pods should get a host IP [Conformance]" time="4.2"></testcase>
    <testcase name="[It] [sig-apps] Deployment rolls over [Conformance]" time="60">
      <failure message="[FAILED] timed out waiting for the condition" type="failed">[FAILED] timed out waiting for the condition
stack</failure>
    </testcase>
    <testcase name="[It] [sig-node] pulls from a registry [Conformance]" time="30">
      <failure message="[FAILED] pod failed: Back-off pulling image &quot;gcr.io/k8s-authenticated-test/agnhost:2.6&quot;: ImagePullBackOff" type="failed"></failure>
    </testcase>
    <testcase name="[It] [sig-storage] something [Serial]" time="0"><skipped message="skipped"></skipped></testcase>
    <testcase name="[It] [sig-network] needs IPv6 [Conformance]" time="0"><skipped message="skipped - Requires an IPv6 cluster"></skipped></testcase>
  </testsuite>
</testsuites>`

func TestClassify(t *testing.T) {
	cases, err := parseJUnit([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	offline := []MissingImage{{Ref: "gcr.io/k8s-authenticated-test/agnhost:2.6", Reason: "a private registry"}}
	r := Classify(cases, offline)
	if len(r.Passed) != 1 || len(r.Failed) != 2 || r.NotSelected != 1 || len(r.Skipped["Requires an IPv6 cluster"]) != 1 {
		t.Fatalf("classified as %+v", r)
	}
	roll, pull := r.Failed[0], r.Failed[1]
	if roll.Reason != "timed out waiting for the condition" || roll.Offline != "" {
		t.Errorf("the deployment failure: %+v", roll)
	}
	if !strings.Contains(pull.Offline, "a private registry") {
		t.Errorf("the pull failure is not put down to the registry: %+v", pull)
	}
	md := render(Run{Focus: "x", Skip: "y", Nodes: "kubox v1 server and agent on etcd", Date: "2026-12-02 05:25 UTC"}, r, offline)
	for _, want := range []string{"kubox v1 server and agent on etcd, started 2026-12-02 05:25 UTC.\n", "| 1 | 2 | 1 | 1 |", "## Failed\n\n- [It] [sig-apps] Deployment rolls over", "## Failed for want of a network", "Requires an IPv6 cluster", "`gcr.io/k8s-authenticated-test/agnhost:2.6`: a private registry"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

// A gomega "Expected" message is reported with what was found and wanted.
func TestReasonExpected(t *testing.T) {
	m := &message{Message: "[FAILED] Expected\n    <string>: PRETTY_NAME=\"Debian GNU/Linux 12\"\n    NAME=\"Debian GNU/Linux\"\nto contain substring\n    <string>: Alpine Linux\n"}
	want := `Expected <string>: PRETTY_NAME="Debian GNU/Linux 12" NAME="Debian GNU/Linux" to contain substring <string>: Alpine Linux`
	if got := reason(m); got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// A spec that checks upstream's Alpine-based kitten image is put down to
// the image, which only the network can bring.
func TestClassifyImageGap(t *testing.T) {
	text := "[FAILED] Expected\n    <string>: PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nto contain substring\n    <string>: Alpine Linux\n"
	r := Classify([]testCase{{Name: "[It] [sig-node] ImageVolume should succeed with pod and pull policy of Always [Conformance]", Failure: &message{Message: text}}}, nil)
	if len(r.Failed) != 1 || !strings.Contains(r.Failed[0].Offline, "kitten") {
		t.Fatalf("classified as %+v", r)
	}
	if md := render(Run{}, r, nil); !strings.Contains(md, "## Failed for want of a network\n\n- [It] [sig-node] ImageVolume") {
		t.Errorf("summary:\n%s", md)
	}
}
