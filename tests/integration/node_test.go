package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testImagesBuild: tests/images/build.sh's archives.
var testImagesBuild = &built{prefix: "kubox-test-images-", make: func(dir string) error {
	if out, err := exec.Command("bash", "../images/build.sh", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("tests/images/build.sh: %v\n%s", err, out)
	}
	return nil
}}

// testImages returns the directory holding the test image archives.
func testImages(t *testing.T) string {
	t.Helper()
	return testImagesBuild.get(t)
}

// dropImage copies an image archive into the node's air-gap folder.
func dropImage(t *testing.T, s *server, archive string) {
	t.Helper()
	dir := filepath.Join(s.DataDir, "agent", "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(archive)+".part")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, filepath.Base(archive))); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it returns true or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(time.Second)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// startNode starts a server with a node and waits for the node to be Ready.
func startNode(t *testing.T, args ...string) *server {
	t.Helper()
	s := newNodeServer(t, args...)
	s.StartReady()
	waitNodeReady(t, s)
	return s
}

// waitNodeReady waits for the server's node to be Ready.
func waitNodeReady(t *testing.T, s *server) {
	t.Helper()
	waitFor(t, "node Ready", 3*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		return err == nil && strings.Contains(out, "=True"), out
	})
}

const echoDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: kubox.test/echo:v1
        imagePullPolicy: Never
        args: [serve, --port, "8080"]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-np, namespace: default}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
`

// TestNode: a fresh server runs a node with no registry and no image
// tarball of its own; pods run, talk, and are reachable through Services.
func TestNode(t *testing.T) {
	images := testImages(t)
	s := startNode(t)

	wide := s.MustKubectl("get", "nodes", "-o", "wide", "--no-headers")
	for _, want := range []string{"Ready", "v1.37.2", "containerd://"} {
		if !strings.Contains(wide, want) {
			t.Errorf("kubectl get nodes -o wide lacks %q:\n%s", want, wide)
		}
	}
	// kubox's own figures on the API server's /metrics: the start-up's
	// phases up to the pod network, the datastore's file; none without
	// credentials.
	metrics := s.MustKubectl("get", "--raw", "/metrics")
	for _, want := range []string{`kubox_startup_phase_seconds{phase="datastore"}`, `kubox_startup_phase_seconds{phase="kubelet"}`,
		`kubox_startup_phase_seconds{phase="pod-network"}`, `kubox_datastore_file_bytes{file="` + filepath.Join(s.DataDir, "server", "db", "state.db") + `"}`} {
		if !strings.Contains(metrics, want+" ") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// kine's figures: its SQL statements by name.
	if !strings.Contains(metrics, `kine_sql_time_seconds_count{`) {
		t.Error("/metrics lacks kine_sql_time_seconds")
	}
	if code := anonymousGet(t, s.Port, "/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials answered %d, want 401", code)
	}
	nodeIP := strings.TrimSpace(s.MustKubectl("get", "nodes", "-o", `jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}`))
	if nodeIP == "" || !strings.Contains(wide, nodeIP) {
		t.Errorf("node IP %q not shown by kubectl get nodes -o wide:\n%s", nodeIP, wide)
	}

	// A broken archive is reported by name and skipped; the good ones, in
	// either format, are imported while the server runs.
	broken := filepath.Join(t.TempDir(), "broken.tar")
	os.WriteFile(broken, []byte("this is not an image archive"), 0o644)
	dropImage(t, s, broken)
	dropImage(t, s, filepath.Join(images, "echo.tar"))
	dropImage(t, s, filepath.Join(images, "echo-docker.tar"))
	manifest := filepath.Join(t.TempDir(), "echo.yaml")
	os.WriteFile(manifest, []byte(echoDeployment), 0o644)
	s.MustKubectl("apply", "-f", manifest)
	if out, err := s.Kubectl("rollout", "status", "deployment/echo", "--timeout=180s"); err != nil {
		t.Fatalf("deployment not available: %v\n%s\n%s", err, out, s.MustKubectl("get", "pods", "-o", "wide"))
	}

	waitFor(t, "the broken archive reported", time.Minute, func() (bool, string) {
		return strings.Contains(s.tail(2000), "cannot import image archive "+filepath.Join(s.DataDir, "agent", "images", "broken.tar")), ""
	})
	// The archives imported from agent/images are counted, by result.
	metrics = s.MustKubectl("get", "--raw", "/metrics")
	for _, result := range []string{"success", "error"} {
		m := regexp.MustCompile(`(?m)^kubox_image_import_archives_total\{result="` + result + `"\} (\S+)$`).FindStringSubmatch(metrics)
		if m == nil || m[1] == "0" {
			t.Errorf("/metrics: kubox_image_import_archives_total{result=%q} = %v, want at least 1", result, m)
		}
	}
	s.MustKubectl("run", "docker-format", "--image", "kubox.test/echo-docker:v1", "--image-pull-policy", "Never", "--restart", "Never", "--", "hello")
	waitFor(t, "the docker-archive image to run", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "docker-format", "-o", "jsonpath={.status.phase}")
		return out == "Succeeded", out
	})
	if out := s.MustKubectl("logs", "docker-format"); !strings.Contains(out, "hello from docker-format") {
		t.Errorf("docker-archive image pod printed %q", out)
	}

	// ClusterIP from the host.
	clusterIP := strings.TrimSpace(s.MustKubectl("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"))
	body := httpGetRetry(t, fmt.Sprintf("http://%s:80/", clusterIP))
	if !strings.HasPrefix(body, "pod=echo-") {
		t.Errorf("ClusterIP answered %q, want pod=echo-…", body)
	}
	// NodePort on the node IP.
	body = httpGetRetry(t, fmt.Sprintf("http://%s:30080/", nodeIP))
	if !strings.HasPrefix(body, "pod=echo-") {
		t.Errorf("NodePort answered %q", body)
	}

	pods := strings.Fields(s.MustKubectl("get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].metadata.name}"))
	ips := strings.Fields(s.MustKubectl("get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].status.podIP}"))
	if len(pods) != 3 || len(ips) != 3 {
		t.Fatalf("want 3 pods with IPs, got %v %v", pods, ips)
	}
	// From another pod: the Service by ClusterIP, and pod to pod.
	out := s.MustKubectl("exec", pods[0], "--", "/echo", "get", fmt.Sprintf("http://%s/", clusterIP), "--retries", "5")
	if !strings.Contains(out, "pod=echo-") {
		t.Errorf("ClusterIP from a pod answered %q", out)
	}
	out = s.MustKubectl("exec", pods[0], "--", "/echo", "get", fmt.Sprintf("http://%s:8080/", ips[1]), "--retries", "5")
	if !strings.Contains(out, "pod="+pods[1]) {
		t.Errorf("pod-to-pod: %s answered %q, want pod=%s", ips[1], out, pods[1])
	}
	// Cluster DNS, from a pod: a Service by its full name and by the
	// search path.
	if out, err := s.Kubectl("rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=120s"); err != nil {
		t.Fatalf("coredns not available: %v\n%s\n%s", err, out, s.MustKubectl("get", "pods", "-A", "-o", "wide"))
	}
	out = s.MustKubectl("exec", pods[0], "--", "/echo", "resolve", "echo.default.svc.cluster.local", "--timeout", "10s")
	if !strings.Contains(out, clusterIP) {
		t.Errorf("echo.default.svc.cluster.local resolved to %q, want %s", out, clusterIP)
	}
	out = s.MustKubectl("exec", pods[0], "--", "/echo", "resolve", "kubernetes.default", "--timeout", "10s")
	if !strings.Contains(out, "10.43.0.1") {
		t.Errorf("kubernetes.default resolved to %q, want 10.43.0.1", out)
	}
	// Every system pod runs, with no registry and no image tarball, and
	// the add-ons serve.
	checkAddons(t, s, nodeIP, pods[0], clusterIP)

	// Logs show the requests the pods served.
	logs := s.MustKubectl("logs", "-l", "app=echo", "--tail=-1", "--prefix")
	if !strings.Contains(logs, "listening on :8080") {
		t.Errorf("kubectl logs lacks the start line:\n%s", logs)
	}
	// port-forward.
	checkPortForward(t, s, pods[2])

	// Restarting kubox leaves the containers running, with no restarts.
	before := containerIDs(t, s)
	s.Stop()
	if code := s.ExitCode(); code != 0 {
		t.Fatalf("kubox server exited %d on SIGTERM", code)
	}
	s.StartReady()
	waitFor(t, "node Ready after restart", 3*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "nodes", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True", out
	})
	time.Sleep(10 * time.Second) // let the kubelet resync the pods
	after := containerIDs(t, s)
	if before != after {
		t.Errorf("containers changed across a kubox restart:\nbefore %s\nafter  %s", before, after)
	}
	restarts := s.MustKubectl("get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].status.containerStatuses[0].restartCount}")
	if strings.Trim(restarts, "0 ") != "" {
		last, _ := s.Kubectl("get", "pods", "-l", "app=echo", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].lastState.terminated}{"\n"}{end}`)
		events, _ := s.Kubectl("get", "events", "--sort-by=.lastTimestamp")
		t.Errorf("restart counts after a kubox restart: %s\nlast states:\n%s\nevents:\n%s", restarts, last, events)
	}
	body = httpGetRetry(t, fmt.Sprintf("http://%s:80/", clusterIP))
	if !strings.HasPrefix(body, "pod=echo-") {
		t.Errorf("ClusterIP after restart answered %q", body)
	}

	checkContainerdRestart(t, s)
	checkLocalPath(t, s)
	nodeName := strings.TrimSpace(s.MustKubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"))
	checkCSIRegistration(t, s.Kubectl, s.DataDir, nodeName, "csi.kubox.test")
	checkOOM(t, s)
	checkDisable(t, s)

	// killall takes everything down, with the data dir named only in a
	// config file (as a service's config.yaml does).
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data-dir: %s\nrun-dir: %s\ncluster-cidr: 10.42.0.0/16\n", s.DataDir, s.RunDir)), 0o600)
	if out, err := run(s.bin, []string{"killall", "--config", cfg}, nil); err != nil {
		t.Fatalf("kubox killall --config: %v\n%s", err, out)
	}
	checkClean(t, s)
}

const localPathObjects = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: lp-data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: lp-user, namespace: default}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: user
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [sleep]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: lp-data}
`

// checkLocalPath: a claim of the default class (local-path) is provisioned
// by the node itself once a pod uses it, as a directory below
// <data-dir>/storage; deleting the claim removes the volume and the
// directory.
func checkLocalPath(t *testing.T, s *server) {
	t.Helper()
	if out := s.MustKubectl("get", "storageclass", "local-path", "-o",
		`jsonpath={.provisioner} {.volumeBindingMode} {.reclaimPolicy} {.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}`); out != "kubox.io/local-path WaitForFirstConsumer Delete true" {
		t.Errorf("storage class local-path: %q", out)
	}
	t0 := time.Now()
	f := filepath.Join(t.TempDir(), "local-path.yaml")
	os.WriteFile(f, []byte(localPathObjects), 0o644)
	s.MustKubectl("apply", "-f", f)
	waitFor(t, "the local-path pod to run", 45*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "lp-user", "-o", "jsonpath={.status.phase}")
		if out == "Running" {
			return true, out
		}
		ev, _ := s.Kubectl("get", "events", "--field-selector", "involvedObject.name=lp-data", "-o", "jsonpath={range .items[*]}{.reason}: {.message}; {end}")
		return false, out + " / claim events: " + ev
	})
	if out := s.MustKubectl("get", "pvc", "lp-data", "-o", "jsonpath={.status.phase} {.spec.storageClassName}"); out != "Bound local-path" {
		t.Fatalf("claim: %q, want Bound local-path", out)
	}
	pv := strings.TrimSpace(s.MustKubectl("get", "pvc", "lp-data", "-o", "jsonpath={.spec.volumeName}"))
	uid := strings.TrimSpace(s.MustKubectl("get", "pvc", "lp-data", "-o", "jsonpath={.metadata.uid}"))
	if pv != "pvc-"+uid {
		t.Errorf("volume %q, want pvc-%s", pv, uid)
	}
	dir := strings.TrimSpace(s.MustKubectl("get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}"))
	if want := filepath.Join(s.DataDir, "storage", pv+"_default_lp-data"); dir != want {
		t.Errorf("volume path %q, want %s", dir, want)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o777 {
		t.Errorf("volume directory on the host: %v %v", st, err)
	}
	if out := s.MustKubectl("get", "pv", pv, "-o", `jsonpath={.metadata.annotations.pv\.kubernetes\.io/provisioned-by} {.spec.persistentVolumeReclaimPolicy}`); out != "kubox.io/local-path Delete" {
		t.Errorf("volume %s: %q", pv, out)
	}
	if out := s.MustKubectl("get", "pod", "lp-user", "-o", "jsonpath={.spec.volumes[0].persistentVolumeClaim.claimName} {.spec.containers[0].volumeMounts[0].mountPath}"); out != "lp-data /data" {
		t.Errorf("pod volume: %q", out)
	}

	// The data outlives the pod: a new pod on the same claim reads it.
	s.MustKubectl("exec", "lp-user", "--", "/echo", "write", "/data/note", "kept across pods")
	s.MustKubectl("delete", "pod", "lp-user", "--timeout=30s")
	s.MustKubectl("apply", "-f", f)
	waitFor(t, "the recreated local-path pod to run", 45*time.Second, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "lp-user", "-o", "jsonpath={.status.phase}")
		return out == "Running", out
	})
	if out, err := s.Kubectl("exec", "lp-user", "--", "/echo", "cat", "/data/note"); err != nil || out != "kept across pods" {
		t.Errorf("the recreated pod read %q (%v), want the file the first one wrote", out, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "note")); err != nil || string(data) != "kept across pods" {
		t.Errorf("the file in the volume directory on the host: %q %v", data, err)
	}

	s.MustKubectl("delete", "pod", "lp-user", "--timeout=30s")
	s.MustKubectl("delete", "pvc", "lp-data", "--wait=false")
	waitFor(t, "the released volume deleted", 30*time.Second, func() (bool, string) {
		out, err := s.Kubectl("get", "pv", pv, "--ignore-not-found", "-o", "jsonpath={.status.phase}")
		return err == nil && out == "", out
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume directory %s still there: %v", dir, err)
	}
	t.Logf("local-path volume %s provisioned, used and reclaimed in %s", pv, time.Since(t0).Round(time.Second))
}

const oomPod = `apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: kubox.test/echo:v1
    imagePullPolicy: Never
    args: [alloc, "256"]
    resources:
      limits: {memory: 64Mi}
`

// checkOOM: a pod over its memory limit is OOMKilled, and its cgroup lies
// below the cgroup kubox was started in.
func checkOOM(t *testing.T, s *server) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "hog.yaml")
	os.WriteFile(f, []byte(oomPod), 0o644)
	s.MustKubectl("apply", "-f", f)
	uid := strings.TrimSpace(s.MustKubectl("get", "pod", "hog", "-o", "jsonpath={.metadata.uid}"))
	waitFor(t, "hog OOMKilled", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "hog", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.reason}")
		return out == "OOMKilled", out
	})
	// The pod's memory cgroup: under kubox's own, never at the root.
	own := ownCgroup(t, s.PID(), "memory")
	podDir := ""
	filepath.WalkDir("/sys/fs/cgroup/memory", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasSuffix(p, "pod"+uid) {
			podDir = p
			return filepath.SkipAll
		}
		return nil
	})
	if podDir == "" {
		t.Fatalf("no memory cgroup for pod %s", uid)
	}
	want := filepath.Join("/sys/fs/cgroup/memory", own) + "/"
	if !strings.HasPrefix(podDir, want) || own == "/" {
		t.Errorf("pod cgroup %s is not below kubox's own memory cgroup %s", podDir, want)
	}
	s.MustKubectl("delete", "pod", "hog", "--wait=false")
}

// ownCgroup reads the cgroup of pid in a v1 controller.
func ownCgroup(t *testing.T, pid int, controller string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			for _, c := range strings.Split(parts[1], ",") {
				if c == controller {
					return parts[2]
				}
			}
		}
	}
	t.Fatalf("no %s cgroup for pid %d", controller, pid)
	return ""
}

// checkClean: after killall no kubox process, mount, interface, netns or
// iptables chain of this node is left.
func checkClean(t *testing.T, s *server) {
	t.Helper()
	if out, _ := run("pgrep", []string{"-af", "kubox|containerd-shim"}, nil); strings.Contains(out, s.DataDir) || strings.Contains(out, s.RunDir) {
		t.Errorf("processes left after killall:\n%s", out)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, s.DataDir) || strings.Contains(line, s.RunDir) {
			t.Errorf("mount left after killall: %s", line)
		}
	}
	for _, ifc := range []string{"cni0", "flannel.1"} {
		if _, err := os.Stat("/sys/class/net/" + ifc); err == nil {
			t.Errorf("interface %s left after killall", ifc)
		}
	}
	links, _ := run("ip", []string{"-o", "link"}, nil)
	if strings.Contains(links, "veth") {
		t.Errorf("veth interfaces left after killall:\n%s", links)
	}
	if ns, _ := os.ReadDir("/var/run/netns"); len(ns) > 0 {
		for _, e := range ns {
			if strings.HasPrefix(e.Name(), "cni-") {
				t.Errorf("network namespace %s left after killall", e.Name())
			}
		}
	}
	if _, err := os.Stat(s.RunDir); err == nil {
		t.Errorf("run dir %s left after killall", s.RunDir)
	}
	if entries, _ := os.ReadDir("/run/containerd/runc/k8s.io"); len(entries) > 0 {
		t.Errorf("runc state left in /run/containerd/runc/k8s.io: %d entries", len(entries))
	}
	podDirs, _ := os.ReadDir(filepath.Join(s.DataDir, "agent", "kubelet", "pods"))
	logs, _ := os.ReadDir("/var/log/pods")
	for _, p := range podDirs {
		for _, l := range logs {
			if strings.HasSuffix(l.Name(), "_"+p.Name()) {
				t.Errorf("pod log directory /var/log/pods/%s left after killall", l.Name())
			}
		}
	}
	sandboxes, _ := os.ReadDir(filepath.Join(s.DataDir, "agent", "containerd", "io.containerd.grpc.v1.cri", "sandboxes"))
	results, _ := os.ReadDir("/var/lib/cni/results")
	for _, sb := range sandboxes {
		for _, r := range results {
			if strings.Contains(r.Name(), "-"+sb.Name()+"-") {
				t.Errorf("cached pod network result /var/lib/cni/results/%s left after killall", r.Name())
			}
		}
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := run(tool, nil, nil)
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, "FLANNEL-") {
				t.Errorf("%s still shows %s", tool, line)
				break
			}
		}
	}
}

func containerIDs(t *testing.T, s *server) string {
	t.Helper()
	out := s.MustKubectl("get", "pods", "-l", "app=echo", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID} {end}")
	f := strings.Fields(out)
	if len(f) != 3 {
		t.Fatalf("want 3 containers, got %q", out)
	}
	return out
}

func httpGetRetry(t *testing.T, url string) string {
	t.Helper()
	var last string
	for i := 0; i < 30; i++ {
		out, err := run("curl", []string{"-sS", "--max-time", "5", url}, nil)
		if err == nil {
			return out
		}
		last = out
		time.Sleep(time.Second)
	}
	t.Fatalf("GET %s failed: %s", url, last)
	return ""
}

func checkPortForward(t *testing.T, s *server, pod string) {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "kubectl", "--kubeconfig", s.Kubeconfig, "port-forward", "pod/"+pod, fmt.Sprintf("%d:8080", port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	body := httpGetRetry(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if !strings.Contains(body, "pod="+pod) {
		t.Errorf("port-forward to %s answered %q", pod, body)
	}
}

// checkContainerdRestart: containerd killed under a running node is started
// again by kubox, which keeps running; the pods' containers are untouched
// and new pods run.
func checkContainerdRestart(t *testing.T, s *server) {
	t.Helper()
	before := containerIDs(t, s)
	pid := containerdPID(t, s.PID())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill containerd (%d): %v", pid, err)
	}
	waitFor(t, "a new containerd", time.Minute, func() (bool, string) {
		select {
		case <-s.exited:
			t.Fatalf("kubox exited when its containerd was killed: %v\n%s", s.err, s.tail(20))
		default:
		}
		now := containerdPIDOrZero(s.PID())
		return now != 0 && now != pid, fmt.Sprint(now)
	})
	s.MustKubectl("run", "after-containerd", "--image", "kubox.test/echo:v1", "--image-pull-policy", "Never", "--restart", "Never", "--", "hello")
	waitFor(t, "a new pod to run with the restarted containerd", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "pod", "after-containerd", "-o", "jsonpath={.status.phase}")
		return out == "Succeeded", out
	})
	if after := containerIDs(t, s); after != before {
		t.Errorf("containers changed when containerd was restarted:\nbefore %s\nafter  %s", before, after)
	}
	if out, err := s.Kubectl("get", "nodes", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`); err != nil || out != "True" {
		t.Errorf("node not Ready after containerd was restarted: %v %q", err, out)
	}
	s.MustKubectl("delete", "pod", "after-containerd", "--wait=false")
}

// containerdPID is the pid of kubox's containerd child (`kubox containerd`).
func containerdPID(t *testing.T, parent int) int {
	t.Helper()
	pid := containerdPIDOrZero(parent)
	if pid == 0 {
		t.Fatalf("no containerd child of kubox (%d)", parent)
	}
	return pid
}

func containerdPIDOrZero(parent int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && args[1] == "containerd" {
			return pid
		}
	}
	return 0
}
