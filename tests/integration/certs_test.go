package integration

import (
	"crypto/tls"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// servingSerial is the serial of the certificate the API port presents.
func servingSerial(t *testing.T, port int) string {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the certificate is read
	if err != nil {
		t.Fatalf("TLS to the API port: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestCertRotation: with certificates valid for 100 s, a server and its
// node keep working for 170 s, past their first expiry: kubectl with the admin kubeconfig,
// the node Ready, a pod running without a restart, the controllers and the
// scheduler acting, logs through the kubelet; the API's serving
// certificate is a new one. KUBOX_TEST_CERT_VALIDITY and
// KUBOX_TEST_CERT_RUN set other durations (make test keeps these, for
// its running time).
func TestCertRotation(t *testing.T) {
	validity, runFor := envDuration(t, "KUBOX_TEST_CERT_VALIDITY", 100*time.Second), envDuration(t, "KUBOX_TEST_CERT_RUN", 170*time.Second)
	t.Logf("certificates valid for %s, checked for %s", validity, runFor)
	s := startNodeWithKeeper(t, "--cert-validity", validity.String(), "--node-cert-validity", validity.String())
	first := servingSerial(t, s.Port)
	expiryLeft(t, s, "serving-kube-apiserver", validity)
	started := time.Now()
	for time.Since(started) < runFor {
		// Each kubectl reads the admin kubeconfig afresh, as a user's does.
		var out string
		var err error
		for try := 0; try < 3; try++ {
			if out, err = s.Kubectl("get", "nodes", "--no-headers"); err == nil {
				break
			}
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			t.Fatalf("kubectl get nodes %s after start: %v\n%s", time.Since(started).Round(time.Second), err, out)
		}
		if !strings.Contains(out, " Ready ") {
			t.Fatalf("node not Ready %s after start:\n%s", time.Since(started).Round(time.Second), out)
		}
		time.Sleep(10 * time.Second)
	}
	if servingSerial(t, s.Port) == first {
		t.Error("the API's serving certificate was not replaced")
	}
	// The metric follows the renewals: had the certificate not been
	// replaced, it would have expired by now.
	expiryLeft(t, s, "serving-kube-apiserver", validity)
	if n := s.MustKubectl("get", "pod", "keeper", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"); n != "0" {
		t.Errorf("pod keeper restarted %s times", n)
	}
	// The controller-manager and the scheduler still act; the API server
	// still reaches the kubelet.
	s.MustKubectl("create", "deployment", "late", "--image=kubox.test/echo:v1", "--", "/echo", "serve", "--port", "8080")
	if out, err := s.Kubectl("rollout", "status", "deployment/late", "--timeout=120s"); err != nil {
		t.Fatalf("a deployment created after the renewals: %v\n%s", err, out)
	}
	// A try that fails is logged with its error and tried again, at most
	// three times: a renewal is due about now, and it must not break the
	// path for longer than a retry.
	for try := 1; ; try++ {
		out, err := s.Kubectl("logs", "keeper")
		if err == nil {
			break
		}
		if try == 3 {
			t.Errorf("kubectl logs through the kubelet, %d tries: %v\n%s", try, err, out)
			break
		}
		t.Logf("kubectl logs through the kubelet, try %d: %v\n%s", try, err, out)
		time.Sleep(2 * time.Second)
	}
	if !strings.Contains(s.tail(5000), "renewed certificate serving-kube-apiserver") {
		t.Error("no log line about the serving certificate's renewal")
	}

	// Renewed on demand while the server runs: every certificate, the
	// admin kubeconfig with them.
	before := servingSerial(t, s.Port)
	out, err := run(s.bin, []string{"certificate", "rotate", "--config", s.ConfigFile, "--data-dir", s.DataDir, "--write-kubeconfig", s.Kubeconfig}, nil)
	if err != nil || !strings.Contains(out, "renewed serving-kube-apiserver") || !strings.Contains(out, "updated "+s.Kubeconfig) {
		t.Fatalf("kubox certificate rotate: %v\n%s", err, out)
	}
	waitFor(t, "the API to serve the rotated certificate", time.Minute, func() (bool, string) {
		return servingSerial(t, s.Port) != before, "serial " + before
	})
	s.MustKubectl("get", "nodes")
}

// expiryLeft checks that the API server's /metrics reports the certificate
// name with a positive time left, at most validity.
func expiryLeft(t *testing.T, s *server, name string, validity time.Duration) {
	t.Helper()
	out := s.MustKubectl("get", "--raw", "/metrics")
	m := regexp.MustCompile(`(?m)^kubox_certificate_expiry_seconds\{[^}]*name="` + regexp.QuoteMeta(name) + `"[^}]*\} (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no kubox_certificate_expiry_seconds for %s in /metrics", name)
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v <= 0 || v > validity.Seconds() {
		t.Errorf("kubox_certificate_expiry_seconds{name=%q} = %s, want 0 < v <= %.0f", name, m[1], validity.Seconds())
	}
}

// envDuration is the duration in the environment variable name, or def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}
