// Package loadbalancer is an agent's way to the API: a TCP proxy on
// loopback that knows every server and sends each connection to one that
// answers, so that the kubelet, kube-proxy and flannel need one fixed
// address while servers come and go. TLS passes through untouched.
package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Logger receives what the balancer notices.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// LoadBalancer forwards connections from its listener to the servers.
type LoadBalancer struct {
	ln  net.Listener
	log Logger

	mu      sync.Mutex
	servers []string // host:port; the one that answered last goes first
	// While no server answers, every client retry fails: say so once in a
	// while, with a count, not once per connection.
	lastWarn time.Time
	failed   int
}

// Listen opens address (e.g. 127.0.0.1:6444) for servers (host:port).
func Listen(address string, servers []string, log Logger) (*LoadBalancer, error) {
	if len(servers) == 0 {
		return nil, errors.New("load balancer: no server to send connections to")
	}
	ln, err := net.Listen("tcp", address)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("the agent's API load balancer cannot listen on %s: the port is in use (another kubox agent?)", address)
	}
	if err != nil {
		return nil, err
	}
	return &LoadBalancer{ln: ln, log: log, servers: unique(servers)}, nil
}

// Address is where clients connect.
func (lb *LoadBalancer) Address() string { return lb.ln.Addr().String() }

// SetServers replaces the server list (the one in use stays first if it is
// still listed).
func (lb *LoadBalancer) SetServers(servers []string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	next := unique(servers)
	if len(next) == 0 {
		return
	}
	if cur := lb.servers[0]; contains(next, cur) {
		next = append([]string{cur}, without(next, cur)...)
	}
	lb.servers = next
}

// Servers returns the current list, preferred first.
func (lb *LoadBalancer) Servers() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]string(nil), lb.servers...)
}

// Serve accepts connections until ctx ends, then closes the listener.
func (lb *LoadBalancer) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		lb.ln.Close()
	}()
	for {
		conn, err := lb.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go lb.forward(ctx, conn)
	}
}

// forward connects conn to the first server that answers.
func (lb *LoadBalancer) forward(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	var backend net.Conn
	var lastErr error
	for _, s := range lb.Servers() {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, "tcp", s)
		if err != nil {
			lastErr = err
			continue
		}
		lb.prefer(s)
		backend = c
		break
	}
	if backend == nil {
		lb.warnDown(lastErr)
		return
	}
	defer backend.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(backend, conn)
	go pipe(conn, backend)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// warnDown reports failed connections at most every 30 s.
func (lb *LoadBalancer) warnDown(err error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.failed++
	if time.Since(lb.lastWarn) < 30*time.Second {
		return
	}
	lb.log.Warnf("no API server answers (%d connections refused since the last report; last error: %v); clients retry", lb.failed, err)
	lb.lastWarn, lb.failed = time.Now(), 0
}

// prefer moves s to the front, logging a switch.
func (lb *LoadBalancer) prefer(s string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.servers[0] == s {
		return
	}
	lb.log.Infof("API server %s does not answer; using %s", lb.servers[0], s)
	lb.servers = append([]string{s}, without(lb.servers, s)...)
}

func unique(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func without(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
