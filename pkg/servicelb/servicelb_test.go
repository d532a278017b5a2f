package servicelb

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParseAddr(t *testing.T) {
	ip, port, err := parseAddr("0202000C:0050")
	if err != nil || ip.String() != "12.0.2.2" || port != 80 {
		t.Errorf("v4: %v %d %v", ip, port, err)
	}
	ip, port, err = parseAddr("00000000000000000000000001000000:1F90")
	if err != nil || ip.String() != "::1" || port != 8080 {
		t.Errorf("v6: %v %d %v", ip, port, err)
	}
	if _, _, err := parseAddr("zz:1"); err == nil {
		t.Error("bad address accepted")
	}
}

func TestListeningTable(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2
   2: 020200C0:01BB 00000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 3
   3: 020200C0:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4
`
	node := net.ParseIP("192.0.2.2")
	for _, c := range []struct {
		port int32
		want bool
	}{
		{80, true},    // every address
		{8080, false}, // loopback only: traffic to the node IP is not affected
		{443, false},  // established, not listening
		{53, true},    // the node's address
		{9999, false},
	} {
		got, err := listening(strings.NewReader(table), tcpListen, node, c.port)
		if err != nil || got != c.want {
			t.Errorf("port %d: %v %v, want %v", c.port, got, err, c.want)
		}
	}
}

func TestHostListening(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	if busy, err := HostListening("TCP", net.IPv4(127, 0, 0, 1), port); err != nil || !busy {
		t.Errorf("a listener on 127.0.0.1:%d not seen: %v %v", port, busy, err)
	}
	if busy, _ := HostListening("TCP", net.IPv4(192, 0, 2, 99), port); busy {
		t.Errorf("a loopback listener counted for another address")
	}
	if busy, _ := HostListening("SCTP", net.IPv4(127, 0, 0, 1), port); busy {
		t.Errorf("SCTP counted as taken")
	}
}

func lbService(name string, age time.Duration, ports ...int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Now().Add(-age))},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
	}
	return s
}

func testNode(name, ip string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

type quietLog struct{}

func (quietLog) Infof(string, ...any)  {}
func (quietLog) Errorf(string, ...any) {}

// ingressOf waits until the Service's ingress reads want.
func ingressOf(t *testing.T, client *fake.Clientset, name, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		svc, err := client.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ips []string
		for _, i := range svc.Status.LoadBalancer.Ingress {
			ips = append(ips, i.IP)
		}
		got = strings.Join(ips, ",")
		if got == want {
			return
		}
	}
	t.Errorf("service %s ingress %q, want %q", name, got, want)
}

func TestController(t *testing.T) {
	web := lbService("web", time.Hour, 80)
	late := lbService("late", time.Minute, 8443, 80) // 80 is web's
	busy := lbService("busy", time.Minute, 9000)     // taken on the host
	gone := lbService("gone", time.Minute, 7000)
	gone.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.77"}, {IP: "192.0.2.3"}}
	plain := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}
	client := fake.NewClientset(web, late, busy, gone, plain, testNode("n1", "192.0.2.2"), testNode("n2", "192.0.2.3"))

	var mu sync.Mutex
	hostBusy := map[int32]bool{9000: true}
	cfg := Config{NodeName: "n1", Log: quietLog{}, Listening: func(_ string, _ net.IP, port int32) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return hostBusy[port], nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, client) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	ingressOf(t, client, "web", "192.0.2.2")
	ingressOf(t, client, "late", "")
	ingressOf(t, client, "busy", "")
	// An address of a node that no longer exists is dropped; another
	// node's stays.
	ingressOf(t, client, "gone", "192.0.2.2,192.0.2.3")

	// The reasons are told in Events on the Service.
	for _, c := range []struct{ svc, want string }{
		{"late", "port 80/TCP is already used by LoadBalancer Service default/web"},
		{"busy", "port 9000/TCP is already in use by a process on the node"},
	} {
		found := false
		for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			evs, _ := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
			for _, e := range evs.Items {
				if e.InvolvedObject.Name == c.svc && e.Reason == "PortInUse" && strings.Contains(e.Message, c.want) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no PortInUse event on %s saying %q", c.svc, c.want)
		}
	}

	// Freeing the port lets the waiting Services in.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ingressOf(t, client, "late", "192.0.2.2")
	mu.Lock()
	hostBusy[9000] = false
	mu.Unlock()
	// The host check is re-read on the next sync; any Service change
	// triggers one.
	if _, err := client.CoreV1().Services("default").Update(ctx, plain, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ingressOf(t, client, "busy", "192.0.2.2")

	if svc, _ := client.CoreV1().Services("default").Get(ctx, "plain", metav1.GetOptions{}); len(svc.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("a ClusterIP Service got an ingress: %v", svc.Status.LoadBalancer.Ingress)
	}
}

func TestWithdraw(t *testing.T) {
	svc := lbService("web", time.Hour, 80)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.2"}, {IP: "192.0.2.3"}}
	client := fake.NewClientset(svc, testNode("n1", "192.0.2.2"))
	if err := withdraw(context.Background(), Config{NodeName: "n1", Log: quietLog{}}, client); err != nil {
		t.Fatal(err)
	}
	ingressOf(t, client, "web", "192.0.2.3")
}
