package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
)

// pprofEnv names the address (loopback only) on which kubox serves Go's
// profiles from the moment it starts, so start-up itself can be profiled:
// KUBOX_PPROF_ADDR=127.0.0.1:6060 kubox server …
const pprofEnv = "KUBOX_PPROF_ADDR"

// servePprof starts the profile listener when pprofEnv is set. Its own mux
// keeps the handlers off http.DefaultServeMux.
func servePprof() error {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return nil
	}
	// kubox re-executes itself (containerd); those children must not
	// try the same port.
	os.Unsetenv(pprofEnv)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !(host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1") {
		return fmt.Errorf("%s=%q: must be a loopback address with a port, e.g. 127.0.0.1:6060", pprofEnv, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w; choose a free port", pprofEnv, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(ln, mux) }()
	return nil
}
