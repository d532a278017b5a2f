package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const readyPods = `apiVersion: v1
kind: Pod
metadata: {name: ready-server, namespace: default, labels: {app: ready-echo}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: echo
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [serve, --port, "8080"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
---
apiVersion: v1
kind: Pod
metadata: {name: ready-client, namespace: default}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: echo
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [get, "http://CLUSTER_IP/", --timeout, 2s, --retries, "60"]
`

// TestReadyMeansNetwork: node Ready is no shortcut. Two pods created the
// moment the node first reports Ready with no start-up taint left start
// with no failed attempt (no warning event, no restart), and one reaches
// the other through a Service.
func TestReadyMeansNetwork(t *testing.T) {
	images := testImages(t)
	s := newNodeServer(t)
	// Imported at start, before the kubelet runs.
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	s.StartReady()
	dir := t.TempDir()
	svc := filepath.Join(dir, "svc.yaml")
	os.WriteFile(svc, []byte(`apiVersion: v1
kind: Service
metadata: {name: ready-echo, namespace: default}
spec:
  selector: {app: ready-echo}
  ports: [{port: 80, targetPort: 8080}]
`), 0o644)
	s.MustKubectl("apply", "-f", svc)
	clusterIP := strings.TrimSpace(s.MustKubectl("get", "svc", "ready-echo", "-o", "jsonpath={.spec.clusterIP}"))
	pods := filepath.Join(dir, "pods.yaml")
	os.WriteFile(pods, []byte(strings.Replace(readyPods, "CLUSTER_IP", clusterIP, 1)), 0o644)

	// Polled without pause: the pods must go in as close to the moment
	// pods can be scheduled as a client can get: the node Ready and its
	// start-up taints (not-ready, uninitialized) lifted, which the
	// controllers do a moment after the kubelet's report.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := s.Kubectl("get", "nodes", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}/{.items[*].spec.taints[*].effect}`)
		if err == nil && strings.TrimSpace(out) == "True/" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not Ready after 3 minutes: %q", out)
		}
	}
	s.MustKubectl("apply", "-f", pods)

	defer func() {
		if t.Failed() {
			for _, args := range [][]string{{"get", "nodes", "-o", "jsonpath={.items[*].spec.taints}"}, {"get", "pods", "-A", "-o", "wide"},
				{"get", "endpointslices", "-o", "wide"}, {"get", "events", "-A", "--sort-by", ".lastTimestamp"}} {
				out, _ := s.Kubectl(args...)
				t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
			}
		}
	}()
	waitFor(t, "the client pod to finish", 3*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "ready-client", "-o", "jsonpath={.status.phase}")
		return out == "Succeeded" || out == "Failed", out
	})
	if out := s.MustKubectl("logs", "ready-client"); !strings.Contains(out, "pod=ready-server") {
		if len(out) > 400 {
			out = "…" + out[len(out)-400:]
		}
		t.Errorf("the client pod, created at node Ready, printed %q; want the server pod's answer through the Service", out)
	}
	for _, pod := range []string{"ready-server", "ready-client"} {
		events := s.MustKubectl("get", "events", "--field-selector", "type=Warning,involvedObject.name="+pod,
			"-o", `jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}`)
		if strings.TrimSpace(events) != "" {
			t.Errorf("pod %s, created at node Ready, has warnings:\n%s", pod, events)
		}
		restarts := s.MustKubectl("get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[*].restartCount}")
		if strings.TrimSpace(restarts) != "0" {
			t.Errorf("pod %s restarted (%s)", pod, restarts)
		}
	}
}
