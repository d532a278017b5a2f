// Command echo is the one program inside kubox's test image: a small static
// binary whose first argument picks what it does in a pod (serve HTTP, fetch
// a URL, resolve a name, talk TCP, use up memory, sleep, say hello), so the
// integration tests need no image but the one they build themselves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: echo COMMAND [ARGS]
  serve [--port 8080]                    HTTP: / answers pod=… ip=…, /healthz answers ok
  get URL [--timeout 5s] [--retries N]   HTTP GET, body to stdout
  resolve NAME [--server IP:PORT] [--srv] A records of NAME (--srv: its SRV records, as target:port)
  tcp HOST:PORT [--send STRING]          connect, send STRING (\n \r \t \\ escapes), print the reply
  alloc MB                               allocate and touch MB MiB, then sleep
  sleep                                  sleep until SIGTERM
  write FILE TEXT                        write TEXT to FILE
  cat FILE                               print FILE
  hello                                  print hello from <hostname>
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdout)
	case "get":
		err = get(args, stdout, stderr)
	case "resolve":
		err = resolve(args, stdout)
	case "tcp":
		err = tcp(args, stdout)
	case "alloc":
		err = alloc(args, stdout)
	case "sleep":
		err = sleep(args)
	case "write":
		err = writeFile(args)
	case "cat":
		err = catFile(args, stdout)
	case "hello":
		fmt.Fprintf(stdout, "hello from %s\n", hostname())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "echo: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "echo %s: %v\n", cmd, err)
			return 2
		}
		fmt.Fprintf(stderr, "echo %s: error: %v\n", cmd, err)
		return 1
	}
	return 0
}

// usageError marks bad command lines (exit status 2).
type usageError struct{ error }

// parseArgs parses flags that may come before or after the positional
// arguments ("get URL --timeout 5s") and checks the positional count.
func parseArgs(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != positional {
		return nil, usageError{fmt.Errorf("want %d argument(s), got %d: %q", positional, len(pos), pos)}
	}
	return pos, nil
}

// terminated is a context that ends on SIGTERM or SIGINT.
func terminated() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// podName is POD_NAME when set (downward API), else the hostname.
func podName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	return hostname()
}

// firstIP picks the first non-loopback IPv4 address of addrs, else the
// first global IPv6 one, else "none".
func firstIP(addrs []net.Addr) string {
	var v6 string
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		default:
			continue
		}
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			continue
		}
		if ip.To4() != nil {
			return ip.String()
		}
		if v6 == "" {
			v6 = ip.String()
		}
	}
	if v6 != "" {
		return v6
	}
	return "none"
}

func localIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "none"
	}
	return firstIP(addrs)
}

// rootBody is the answer to GET /.
func rootBody(pod, ip string) string {
	return fmt.Sprintf("pod=%s ip=%s\n", pod, ip)
}

// handler serves / and /healthz and logs one line per request to log.
func handler(pod, ip string, log io.Writer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, rootBody(pod, ip))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		fmt.Fprintf(log, "%s %s %s from %s %d\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path, r.RemoteAddr, rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func serve(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := fs.Int("port", 8080, "TCP port")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	ctx, stop := terminated()
	defer stop()

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler(podName(), localIP(), stdout),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(stdout, "listening on :%d\n", *port)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "terminating")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

func get(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each attempt")
	retries := fs.Int("retries", 0, "attempts after the first one fails, one second apart")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: *timeout}
	for attempt := 0; ; attempt++ {
		body, err := fetch(client, pos[0])
		if err == nil {
			_, err = stdout.Write(body)
			return err
		}
		if attempt >= *retries {
			return err
		}
		fmt.Fprintf(stderr, "attempt %d: %v\n", attempt+1, err)
		time.Sleep(time.Second)
	}
}

// fetch GETs url and returns its body; a status other than 2xx is an error.
func fetch(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s: %q", url, resp.Status, truncate(body, 200))
	}
	return body, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func resolve(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	server := fs.String("server", "", "DNS server IP:PORT (default: /etc/resolv.conf)")
	timeout := fs.Duration("timeout", 5*time.Second, "lookup timeout")
	srv := fs.Bool("srv", false, "look up SRV records instead")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	r := &net.Resolver{PreferGo: true}
	if *server != "" {
		if _, _, err := net.SplitHostPort(*server); err != nil {
			return usageError{fmt.Errorf("--server %q: %v", *server, err)}
		}
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *server)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *srv {
		_, records, err := r.LookupSRV(ctx, "", "", pos[0])
		if err != nil {
			return err
		}
		for _, rec := range records {
			fmt.Fprintf(stdout, "%s:%d\n", rec.Target, rec.Port)
		}
		return nil
	}
	ips, err := r.LookupIP(ctx, "ip4", pos[0])
	if err != nil && *server != "" {
		// Go names the resolv.conf server in the error even when Dial
		// went elsewhere: say where the query really went.
		return fmt.Errorf("via %s: %w", *server, err)
	}
	if err != nil {
		return err
	}
	for _, ip := range ips {
		fmt.Fprintln(stdout, ip.String())
	}
	return nil
}

// unescape turns \n, \r, \t and \\ into the characters they name.
func unescape(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r", `\t`, "\t").Replace(s)
}

func tcp(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	send := fs.String("send", "", `bytes to send (\n \r \t \\ escapes)`)
	timeout := fs.Duration("timeout", 5*time.Second, "connect timeout")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	conn, err := net.DialTimeout("tcp", pos[0], *timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *send != "" {
		if _, err := io.WriteString(conn, unescape(*send)); err != nil {
			return err
		}
	}
	reply, err := readReply(conn, 4096, 2*time.Second)
	stdout.Write(reply)
	return err
}

// readReply reads from conn until max bytes, EOF or wait has passed; only
// other errors are returned.
func readReply(conn net.Conn, max int, wait time.Duration) ([]byte, error) {
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, max)
	n := 0
	for n < max {
		m, err := conn.Read(buf[n:])
		n += m
		if err != nil {
			var ne net.Error
			if errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout()) {
				break
			}
			return buf[:n], err
		}
	}
	return buf[:n], nil
}

// chunk is how much alloc takes at a time.
const chunk = 1 << 20

func alloc(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("alloc", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	mb, err := strconv.Atoi(pos[0])
	if err != nil || mb < 0 {
		return usageError{fmt.Errorf("MB %q: want a whole number of MiB", pos[0])}
	}
	ctx, stop := terminated()
	defer stop()

	page := os.Getpagesize()
	held := make([][]byte, 0, mb)
	step := progressStep(mb)
	for i := 1; i <= mb; i++ {
		b := make([]byte, chunk)
		for off := 0; off < len(b); off += page {
			b[off] = 1
		}
		held = append(held, b)
		if i%step == 0 || i == mb {
			fmt.Fprintf(stdout, "allocated %d MiB\n", i)
		}
	}
	fmt.Fprintf(stdout, "holding %d MiB\n", len(held))
	<-ctx.Done()
	runtime.KeepAlive(held)
	return nil
}

// progressStep reports about ten times during an allocation of mb MiB.
func progressStep(mb int) int {
	if mb < 10 {
		return 1
	}
	return mb / 10
}

func sleep(args []string) error {
	fs := flag.NewFlagSet("sleep", flag.ContinueOnError)
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	ctx, stop := terminated()
	defer stop()
	<-ctx.Done()
	return nil
}

func writeFile(args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("write", flag.ContinueOnError), args, 2)
	if err != nil {
		return err
	}
	return os.WriteFile(pos[0], []byte(pos[1]), 0o644)
}

func catFile(args []string, stdout io.Writer) error {
	pos, err := parseArgs(flag.NewFlagSet("cat", flag.ContinueOnError), args, 1)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}
