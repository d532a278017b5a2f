package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.kubox.io
spec:
  group: example.kubox.io
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

const widget = `apiVersion: example.kubox.io/v1
kind: Widget
metadata: {name: w1, namespace: %s}
spec: {size: 3}
`

// kubectlFunc runs one kubectl (embedded or the host's) against a server.
type kubectlFunc func(args ...string) (string, error)

// hostKubectl returns the host's own kubectl pointed at s through
// KUBECONFIG, or nil if the host has none.
func hostKubectl(s *server) kubectlFunc {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		return nil
	}
	return func(args ...string) (string, error) {
		return run(path, args, []string{"KUBECONFIG=" + s.Kubeconfig})
	}
}

// exerciseAPI creates, gets, lists, watches and deletes namespaces,
// ConfigMaps and a custom resource with kubectl, as a user would.
func exerciseAPI(t *testing.T, s *server, name string, kubectl kubectlFunc) {
	t.Helper()
	must := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("%s kubectl %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	ns := "api-" + name
	must("create", "namespace", ns)
	if out := must("get", "namespaces", "-o", "name"); !strings.Contains(out, "namespace/"+ns) {
		t.Fatalf("namespace %s not listed:\n%s", ns, out)
	}

	// A watch started before the write must see it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watchOut := make(chan string, 16)
	watch := exec.CommandContext(ctx, s.bin, "kubectl", "--kubeconfig", s.Kubeconfig,
		"get", "configmaps", "-n", ns, "--watch", "-o", "name")
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = watch.Wait() }()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			watchOut <- sc.Text()
		}
		close(watchOut)
	}()
	time.Sleep(2 * time.Second) // let the watch establish

	must("create", "configmap", "cm1", "-n", ns, "--from-literal=greeting=hello")
	must("create", "configmap", "cm2", "-n", ns, "--from-literal=greeting=bye")
	if got := must("get", "configmap", "cm1", "-n", ns, "-o", "jsonpath={.data.greeting}"); got != "hello" {
		t.Fatalf("cm1 greeting = %q, want hello", got)
	}
	list := must("get", "configmaps", "-n", ns, "-o", "name")
	for _, want := range []string{"configmap/cm1", "configmap/cm2"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list lacks %s:\n%s", want, list)
		}
	}
	sawWatch := false
	for !sawWatch {
		select {
		case line, ok := <-watchOut:
			if !ok {
				t.Fatalf("kubectl watch ended before it saw cm2")
			}
			sawWatch = strings.TrimSpace(line) == "configmap/cm2"
		case <-ctx.Done():
			t.Fatalf("kubectl watch did not report configmap/cm2")
		}
	}

	// A CustomResourceDefinition and an object of it.
	dir := t.TempDir()
	crdFile := filepath.Join(dir, "crd.yaml")
	objFile := filepath.Join(dir, "widget.yaml")
	os.WriteFile(crdFile, []byte(widgetCRD), 0o644)
	os.WriteFile(objFile, []byte(fmt.Sprintf(widget, ns)), 0o644)
	if _, err := kubectl("get", "crd", "widgets.example.kubox.io"); err != nil {
		must("apply", "-f", crdFile)
	}
	must("wait", "--for", "condition=Established", "--timeout=60s", "crd/widgets.example.kubox.io")
	applyOK := false
	for i := 0; i < 30 && !applyOK; i++ { // discovery may lag the Established condition
		_, err := kubectl("apply", "-f", objFile)
		applyOK = err == nil
		if !applyOK {
			time.Sleep(time.Second)
		}
	}
	if got := must("get", "widgets", "w1", "-n", ns, "-o", "jsonpath={.spec.size}"); got != "3" {
		t.Fatalf("widget size = %q, want 3", got)
	}
	must("delete", "widget", "w1", "-n", ns)
	if out, err := kubectl("get", "widget", "w1", "-n", ns); err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("widget still there after delete: %v\n%s", err, out)
	}

	must("delete", "configmap", "cm1", "-n", ns)
	if out, err := kubectl("get", "configmap", "cm1", "-n", ns); err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("cm1 still there after delete: %v\n%s", err, out)
	}
	must("delete", "namespace", ns, "--wait=false")
}

// TestAPI: a fresh server becomes ready and both the embedded kubectl and
// the host's kubectl work against it.
func TestAPI(t *testing.T) {
	t.Parallel() // control plane only: runs beside the others of its kind
	s := newServer(t)
	s.StartReady()
	exerciseAPI(t, s, "embedded", s.Kubectl)
	if host := hostKubectl(s); host != nil {
		exerciseAPI(t, s, "host", host)
	} else {
		t.Log("no kubectl on the host's PATH; host kubectl not exercised")
	}
}
