package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const addonObjects = `apiVersion: v1
kind: Service
metadata: {name: echo-lb, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{name: http, port: 8088, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-headless, namespace: default}
spec:
  clusterIP: None
  selector: {app: echo}
  ports: [{name: http, port: 8080}]
`

// checkAddons uses the add-ons a fresh node comes with the way a user
// would: every system pod Ready with nothing pulled, cluster DNS (names,
// headless records, SRV, coredns-custom, forwarding upstream), a
// LoadBalancer Service, and kubectl top. pod is an echo pod to query from;
// clusterIP the echo Service's address.
func checkAddons(t *testing.T, s *server, nodeIP, pod, clusterIP string) {
	t.Helper()
	waitFor(t, "every kube-system pod Running and Ready", 3*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "pods", "-n", "kube-system", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.phase}/{.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || out == "" {
			return false, out
		}
		for _, p := range strings.Fields(out) {
			if !strings.HasSuffix(p, "=Running/True") {
				return false, out
			}
		}
		return true, out
	})
	// No registry was asked for anything: no pull event, and containerd
	// (whose log is part of kubox's) never received a pull request.
	if out := s.MustKubectl("get", "events", "-A", "--field-selector", "reason=Pulling", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("image pulls were attempted: %s", out)
	}
	if log := s.tail(1 << 30); strings.Contains(log, "PullImage") {
		t.Errorf("containerd received a PullImage request")
	}

	manifest := filepath.Join(t.TempDir(), "addons.yaml")
	os.WriteFile(manifest, []byte(addonObjects), 0o644)
	s.MustKubectl("apply", "-f", manifest)

	checkDNS(t, s, pod, clusterIP)
	checkServiceLB(t, s, nodeIP)
	checkTop(t, s)
}

// resolveIn runs the echo image's resolver in pod.
func resolveIn(s *server, pod string, args ...string) (string, error) {
	return s.Kubectl(append([]string{"exec", pod, "--", "/echo", "resolve", "--timeout", "10s"}, args...)...)
}

func checkDNS(t *testing.T, s *server, pod, clusterIP string) {
	t.Helper()
	// A short name resolves through the pod's own namespace.
	if out, err := resolveIn(s, pod, "echo"); err != nil || strings.TrimSpace(out) != clusterIP {
		t.Errorf("short name echo resolved to %q (%v), want %s", out, err, clusterIP)
	}
	// A headless Service: one record per ready pod.
	want := strings.Fields(s.MustKubectl("get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].status.podIP}"))
	sort.Strings(want)
	waitFor(t, "the headless Service's pod records", time.Minute, func() (bool, string) {
		out, err := resolveIn(s, pod, "echo-headless.default.svc.cluster.local")
		got := strings.Fields(out)
		sort.Strings(got)
		return err == nil && strings.Join(got, " ") == strings.Join(want, " "), fmt.Sprintf("got %q, want %v", out, want)
	})
	// SRV: the named port of a Service, and of each pod behind a headless one.
	out, err := resolveIn(s, pod, "--srv", "_http._tcp.echo-lb.default")
	if err != nil || strings.TrimSpace(out) != "echo-lb.default.svc.cluster.local.:8088" {
		t.Errorf("SRV _http._tcp.echo-lb.default: %q (%v), want echo-lb.default.svc.cluster.local.:8088", out, err)
	}
	out, err = resolveIn(s, pod, "--srv", "_http._tcp.echo-headless.default")
	if lines := strings.Fields(out); err != nil || len(lines) != len(want) || !strings.Contains(out, ".echo-headless.default.svc.cluster.local.:8080") {
		t.Errorf("SRV _http._tcp.echo-headless.default: %q (%v), want %d records on port 8080", out, err, len(want))
	}

	// coredns-custom: a hosts entry, then a change to it, each taking effect
	// with no restart by hand.
	custom := func(ip string) {
		cm := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: coredns-custom, namespace: kube-system}
data:
  lab.override: |
    hosts {
      %s printer.lab.kubox.test
      fallthrough
    }
`, ip)
		path := filepath.Join(t.TempDir(), "custom.yaml")
		os.WriteFile(path, []byte(cm), 0o644)
		s.MustKubectl("apply", "-f", path)
	}
	for _, ip := range []string{"192.0.2.10", "192.0.2.11"} {
		custom(ip)
		waitFor(t, "printer.lab.kubox.test → "+ip+" from coredns-custom", 3*time.Minute, func() (bool, string) {
			out, err := resolveIn(s, pod, "printer.lab.kubox.test")
			return err == nil && strings.TrimSpace(out) == ip, out
		})
	}

	// Names outside the cluster go to the upstream resolver from
	// --resolv-conf: the harness points it at the node's bridge address,
	// where this test answers.
	stop := serveDNS(t, "10.42.0.1:53", "upstream.kubox.test.", "192.0.2.53")
	defer stop()
	waitFor(t, "a name forwarded to the upstream resolver", time.Minute, func() (bool, string) {
		out, err := resolveIn(s, pod, "upstream.kubox.test")
		return err == nil && strings.TrimSpace(out) == "192.0.2.53", out
	})
}

// serveDNS answers A queries for name with ip on a UDP address, and
// NXDOMAIN for anything else, until stop is called.
func serveDNS(t *testing.T, addr, name, ip string) (stop func()) {
	t.Helper()
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("test resolver: %v", err)
	}
	a := [4]byte(net.ParseIP(ip).To4())
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			reply := dnsmessage.Message{
				Header:    dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true},
				Questions: []dnsmessage.Question{q},
			}
			switch {
			case strings.EqualFold(q.Name.String(), name) && q.Type == dnsmessage.TypeA:
				reply.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
					Body:   &dnsmessage.AResource{A: a},
				}}
			case strings.EqualFold(q.Name.String(), name):
			default:
				reply.RCode = dnsmessage.RCodeNameError
			}
			if out, err := reply.Pack(); err == nil {
				conn.WriteTo(out, from)
			}
		}
	}()
	return func() { conn.Close() }
}

func checkServiceLB(t *testing.T, s *server, nodeIP string) {
	t.Helper()
	waitFor(t, "echo-lb to get the node IP as its ingress", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "svc", "echo-lb", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		return strings.TrimSpace(out) == nodeIP, out
	})
	wide := s.MustKubectl("get", "svc", "echo-lb", "--no-headers")
	if !strings.Contains(wide, nodeIP) {
		t.Errorf("kubectl get svc does not show %s as EXTERNAL-IP:\n%s", nodeIP, wide)
	}
	if body := httpGetRetry(t, fmt.Sprintf("http://%s:8088/", nodeIP)); !strings.HasPrefix(body, "pod=echo-") {
		t.Errorf("LoadBalancer %s:8088 answered %q", nodeIP, body)
	} else {
		t.Logf("LoadBalancer echo-lb at %s:8088 answered %q", nodeIP, strings.TrimSpace(body))
	}

	// A port a process on the node already listens on: the Service stays
	// pending, with an event saying why; once the port is free it is served.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	taken := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: echo-taken, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{port: %d, targetPort: 8080}]
`, port)
	path := filepath.Join(t.TempDir(), "taken.yaml")
	os.WriteFile(path, []byte(taken), 0o644)
	s.MustKubectl("apply", "-f", path)
	waitFor(t, "a PortInUse event on echo-taken", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "events", "--field-selector", "involvedObject.name=echo-taken,reason=PortInUse", "-o", "jsonpath={.items[*].message}")
		return strings.Contains(out, fmt.Sprintf("port %d/TCP is already in use", port)), out
	})
	if out := s.MustKubectl("get", "svc", "echo-taken", "-o", "jsonpath={.status.loadBalancer.ingress}"); strings.TrimSpace(out) != "" {
		t.Errorf("echo-taken got an ingress while its port is in use: %s", out)
	}
	if out := s.MustKubectl("get", "svc", "echo-taken", "--no-headers"); !strings.Contains(out, "<pending>") {
		t.Errorf("echo-taken is not shown pending:\n%s", out)
	}
	ln.Close()
	waitFor(t, "echo-taken served once its port is free", 2*time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "svc", "echo-taken", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		return strings.TrimSpace(out) == nodeIP, out
	})
	s.MustKubectl("delete", "-f", path)
}

func checkTop(t *testing.T, s *server) {
	t.Helper()
	var top string
	waitFor(t, "kubectl top nodes", 3*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("top", "nodes", "--no-headers")
		top = out
		return err == nil && strings.Contains(out, "%") && strings.Contains(out, "Mi"), out
	})
	t.Logf("kubectl top nodes: %s", strings.TrimSpace(top))
	waitFor(t, "kubectl top pods -A", 3*time.Minute, func() (bool, string) {
		out, err := s.Kubectl("top", "pods", "-A", "--no-headers")
		return err == nil && strings.Contains(out, "coredns-") && strings.Contains(out, "echo-") && strings.Contains(out, "Mi"), out
	})
}

// checkDisable restarts the server with every add-on disabled: their
// objects leave the running cluster.
func checkDisable(t *testing.T, s *server) {
	t.Helper()
	s.Stop()
	s.Args = append(s.Args, "--disable", "coredns,local-storage,servicelb,metrics-server")
	s.StartReady()
	gone := func(args ...string) func() (bool, string) {
		return func() (bool, string) {
			out, err := s.Kubectl(append([]string{"get", "--ignore-not-found", "-o", "name"}, args...)...)
			return err == nil && strings.TrimSpace(out) == "", out
		}
	}
	waitFor(t, "the coredns Deployment removed", 2*time.Minute, gone("deployment", "coredns", "-n", "kube-system"))
	waitFor(t, "the kube-dns Service removed", time.Minute, gone("service", "kube-dns", "-n", "kube-system"))
	waitFor(t, "the local-path StorageClass removed", time.Minute, gone("storageclass", "local-path"))
	waitFor(t, "the metrics APIService removed", time.Minute, gone("apiservice", "v1beta1.metrics.k8s.io"))
	waitFor(t, "echo-lb no longer served by the node", time.Minute, func() (bool, string) {
		out, err := s.Kubectl("get", "svc", "echo-lb", "-o", "jsonpath={.status.loadBalancer.ingress}")
		return err == nil && strings.TrimSpace(out) == "", out
	})
	if out, err := s.Kubectl("top", "nodes"); err == nil {
		t.Errorf("kubectl top still answers with metrics-server disabled:\n%s", out)
	}

	// No node provisions local-path volumes any more, even for a class a
	// user made with the add-on's provisioner.
	objects := filepath.Join(t.TempDir(), "off.yaml")
	os.WriteFile(objects, []byte(disabledStorageObjects), 0o644)
	s.MustKubectl("apply", "-f", objects)
	waitFor(t, "the scheduler to place off-user's claim on the node", time.Minute, func() (bool, string) {
		out, _ := s.Kubectl("get", "pvc", "off-claim", "-o", `jsonpath={.metadata.annotations.volume\.kubernetes\.io/selected-node}`)
		return strings.TrimSpace(out) != "", out
	})
	// Provisioning takes a second or two when the add-on runs.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if out, _ := s.Kubectl("get", "pvc", "off-claim", "-o", "jsonpath={.status.phase}"); out != "Pending" {
			t.Errorf("with local-storage disabled, off-claim is %q, want Pending", out)
			break
		}
	}
	s.MustKubectl("delete", "--wait=false", "-f", objects)
}

// disabledStorageObjects are checkLocalPath's claim and pod, renamed, with a
// class of the user's that names the add-on's provisioner.
var disabledStorageObjects = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: user-local}
provisioner: kubox.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
` + strings.NewReplacer("lp-data", "off-claim", "lp-user", "off-user",
	"spec:\n  accessModes", "spec:\n  storageClassName: user-local\n  accessModes").Replace(localPathObjects)
