package loadbalancer

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
)

type nopLog struct{}

func (nopLog) Infof(string, ...any) {}
func (nopLog) Warnf(string, ...any) {}

// backend answers each line with its name.
func backend(t *testing.T, name string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					c.Write([]byte(name + "\n"))
				}
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("who\n"))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestFailover(t *testing.T) {
	a, stopA := backend(t, "a")
	b, stopB := backend(t, "b")
	defer stopB()
	// A server that is down comes first: connections still get through.
	dead, stopDead := backend(t, "dead")
	stopDead()
	lb, err := Listen("127.0.0.1:0", []string{dead, a, b}, nopLog{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go lb.Serve(ctx)

	if got := ask(t, lb.Address()); got != "a" {
		t.Fatalf("first answer from %q, want a", got)
	}
	if got := lb.Servers()[0]; got != a {
		t.Errorf("preferred server %s, want %s", got, a)
	}
	stopA()
	if got := ask(t, lb.Address()); got != "b" {
		t.Fatalf("with a gone, answer from %q, want b", got)
	}
	// New list: the server in use stays first.
	lb.SetServers([]string{a, b})
	if got := lb.Servers(); got[0] != b || len(got) != 2 {
		t.Errorf("after SetServers: %v", got)
	}
}

func TestPortInUse(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	_, err := Listen(ln.Addr().String(), []string{"127.0.0.1:1"}, nopLog{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("want a port-in-use error, got %v", err)
	}
}

type countLog struct{ warns int }

func (c *countLog) Infof(string, ...any) {}
func (c *countLog) Warnf(string, ...any) { c.warns++ }

// TestQuietWhileDown: with every server down, a burst of client retries
// gives one warning, not one per connection.
func TestQuietWhileDown(t *testing.T) {
	dead, stop := backend(t, "dead")
	stop()
	log := &countLog{}
	lb, err := Listen("127.0.0.1:0", []string{dead}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go lb.Serve(ctx)
	for i := 0; i < 5; i++ {
		if got := ask(t, lb.Address()); got != "" {
			t.Fatalf("a dead server answered %q", got)
		}
	}
	lb.mu.Lock()
	warns := log.warns
	lb.mu.Unlock()
	if warns != 1 {
		t.Errorf("%d warnings for 5 refused connections, want 1", warns)
	}
}
