package agent

import (
	"strings"
	"testing"
)

func TestWithoutLoopback(t *testing.T) {
	out, ok := withoutLoopback([]byte("search lan\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\noptions edns0\n"))
	if !ok || strings.Contains(string(out), "127.0.0.53") || strings.Contains(string(out), "::1") ||
		!strings.Contains(string(out), "nameserver 192.0.2.53") || !strings.Contains(string(out), "search lan") {
		t.Fatalf("got %q ok=%v", out, ok)
	}
	if _, ok := withoutLoopback([]byte("nameserver 127.0.0.53\n")); ok {
		t.Fatalf("only a loopback resolver, yet reported usable")
	}
}
