package main

import (
	"bytes"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRootBody(t *testing.T) {
	if got, want := rootBody("web-0", "10.42.0.7"), "pod=web-0 ip=10.42.0.7\n"; got != want {
		t.Errorf("rootBody = %q, want %q", got, want)
	}
}

func TestPodName(t *testing.T) {
	t.Setenv("POD_NAME", "from-env")
	if got := podName(); got != "from-env" {
		t.Errorf("podName with POD_NAME = %q", got)
	}
	t.Setenv("POD_NAME", "")
	h, _ := os.Hostname()
	if got := podName(); got != h {
		t.Errorf("podName without POD_NAME = %q, want hostname %q", got, h)
	}
}

func ipnet(s string) net.Addr {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestFirstIP(t *testing.T) {
	for _, tc := range []struct {
		addrs []net.Addr
		want  string
	}{
		{nil, "none"},
		{[]net.Addr{ipnet("127.0.0.1/8"), ipnet("::1/128")}, "none"},
		{[]net.Addr{ipnet("127.0.0.1/8"), ipnet("10.42.0.7/24"), ipnet("10.42.0.8/24")}, "10.42.0.7"},
		{[]net.Addr{ipnet("fe80::1/64"), ipnet("fd00::5/64"), ipnet("192.168.1.2/24")}, "192.168.1.2"},
		{[]net.Addr{ipnet("::1/128"), ipnet("fe80::1/64"), ipnet("fd00::5/64")}, "fd00::5"},
		{[]net.Addr{&net.IPAddr{IP: net.ParseIP("10.1.2.3")}}, "10.1.2.3"},
	} {
		if got := firstIP(tc.addrs); got != tc.want {
			t.Errorf("firstIP(%v) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}

func TestHandler(t *testing.T) {
	var log bytes.Buffer
	h := handler("p1", "10.0.0.1", &log)
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/", "pod=p1 ip=10.0.0.1\n", 200},
		{"/healthz", "ok", 200},
		{"/nope", "", 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("GET %s: status %d, want %d", tc.path, rec.Code, tc.code)
		}
		if tc.body != "" && rec.Body.String() != tc.body {
			t.Errorf("GET %s: body %q, want %q", tc.path, rec.Body.String(), tc.body)
		}
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one log line per request, got %q", log.String())
	}
	if !strings.Contains(lines[0], "GET / ") || !strings.HasSuffix(lines[2], " 404") {
		t.Errorf("log lines %q", lines)
	}
}

func TestParseArgs(t *testing.T) {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	timeout := fs.Duration("timeout", time.Second, "")
	retries := fs.Int("retries", 0, "")
	pos, err := parseArgs(fs, []string{"--timeout", "3s", "http://x/", "--retries=4"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 1 || pos[0] != "http://x/" || *timeout != 3*time.Second || *retries != 4 {
		t.Errorf("parsed %q timeout %v retries %d", pos, *timeout, *retries)
	}
	if _, err := parseArgs(flag.NewFlagSet("x", flag.ContinueOnError), []string{"a", "b"}, 1); err == nil {
		t.Error("two arguments where one is wanted: no error")
	}
	if _, err := parseArgs(flag.NewFlagSet("x", flag.ContinueOnError), []string{"--bogus"}, 0); err == nil {
		t.Error("unknown flag: no error")
	}
}

func TestUnescape(t *testing.T) {
	if got, want := unescape(`GET / HTTP/1.0\r\n\r\n\\n\t`), "GET / HTTP/1.0\r\n\r\n\\n\t"; got != want {
		t.Errorf("unescape = %q, want %q", got, want)
	}
}

func TestProgressStep(t *testing.T) {
	for mb, want := range map[int]int{0: 1, 5: 1, 10: 1, 100: 10, 1025: 102} {
		if got := progressStep(mb); got != want {
			t.Errorf("progressStep(%d) = %d, want %d", mb, got, want)
		}
	}
}

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"hello"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "hello from ") {
		t.Errorf("hello: exit %d, stdout %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code := run([]string{"alloc", "lots"}, &out, &errOut); code != 2 {
		t.Errorf("alloc lots: exit %d, want 2", code)
	}
}

// TestGetAndTCP runs get and tcp against local servers.
func TestGetAndTCP(t *testing.T) {
	srv := httptest.NewServer(handler("p", "1.2.3.4", &bytes.Buffer{}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"get", srv.URL + "/", "--timeout", "2s"}, &out, &errOut); code != 0 || out.String() != "pod=p ip=1.2.3.4\n" {
		t.Errorf("get /: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"get", srv.URL + "/missing"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "404") {
		t.Errorf("get /missing: exit %d, stderr %q, want 1 and a 404 error line", code, errOut.String())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Write(bytes.ToUpper(buf[:n]))
	}()
	out.Reset()
	if code := run([]string{"tcp", ln.Addr().String(), "--send", `ping\n`}, &out, &errOut); code != 0 || out.String() != "PING\n" {
		t.Errorf("tcp: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}
