package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Errors Join returns, for errors.Is.
var (
	ErrCAMismatch    = errors.New("the server's CA does not match the token's hash: check --server and --token; refusing to join")
	ErrUnauthorized  = errors.New("token rejected")
	ErrNodeNameTaken = errors.New("node name taken")
	// ErrRefused is a renewal the server will not grant: the node must
	// join again with a token.
	ErrRefused = errors.New("refused")
	// ErrStarting: the server cannot take new nodes yet; try again.
	ErrStarting = errors.New("server starting")
)

// JoinOptions tune Join; the zero value is ready to use.
type JoinOptions struct {
	// Timeout bounds each request to the server; 0 means 30 seconds.
	Timeout time.Duration
}

const (
	defaultTimeout   = 30 * time.Second
	maxResponseBytes = 1 << 20
)

// Join fetches the server's CA, checks it against the token's hash (or, for a
// bare secret, trusts it and sets TrustedOnFirstUse), then asks the server
// for the node's certificates over TLS verified by that CA. The secret is
// sent only there, so a server other than the token's never sees it (with a
// bare secret, only if the first answer came from the real server).
func Join(ctx context.Context, serverURL, token string, req NodeRequest, opts JoinOptions) (*NodeBundle, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	base, t, roots, err := reachServer(ctx, serverURL, token, opts.Timeout)
	if err != nil {
		return nil, err
	}
	b, err := postNode(ctx, base, roots, t.Secret, req, opts.Timeout)
	if err != nil {
		return nil, err
	}
	b.TrustedOnFirstUse = t.CAHash == ""
	return b, nil
}

// reachServer parses the server URL and the token, fetches the server's CA
// and checks it against the token's hash, if it has one; the CA then
// verifies the server for the request that carries the secret.
func reachServer(ctx context.Context, serverURL, token string, timeout time.Duration) (string, Token, *x509.CertPool, error) {
	base, err := parseServerURL(serverURL)
	if err != nil {
		return "", Token{}, nil, err
	}
	t, err := ParseToken(token)
	if err != nil {
		return "", Token{}, nil, err
	}
	caBundle, err := fetchCABundle(ctx, base, timeout)
	if err != nil {
		return "", Token{}, nil, err
	}
	if t.CAHash != "" && CAHash(caBundle) != t.CAHash {
		return "", Token{}, nil, fmt.Errorf("%s: %w", base, ErrCAMismatch)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return "", Token{}, nil, fmt.Errorf("%s sent no CA certificate at %s: check that --server is a kubox server", base, cacertsPath)
	}
	return base, t, roots, nil
}

// parseServerURL accepts https://host[:port] with nothing after it but an
// optional slash.
func parseServerURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("invalid --server %q: use https://<host>:<port>, e.g. https://10.0.0.1:6443", s)
	}
	return u.String(), nil
}

// roundTrip sends req over TLS with tlsConfig, or unverified for a nil one,
// and reads the whole answer.
func roundTrip(req *http.Request, base string, tlsConfig *tls.Config, timeout time.Duration) (*http.Response, []byte, error) {
	if tlsConfig == nil {
		// Only for the CA bundle, which is checked against the token's hash.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	}
	client := &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConfig},
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, transportError(base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, nil, transportError(base, err)
	}
	return resp, body, nil
}

func fetchCABundle(ctx context.Context, base string, timeout time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+cacertsPath, nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := roundTrip(req, base, nil, timeout)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s for %s: check that --server is a kubox server", base, resp.Status, cacertsPath)
	}
	return body, nil
}

func postNode(ctx context.Context, base string, roots *x509.CertPool, secret string, nr NodeRequest, timeout time.Duration) (*NodeBundle, error) {
	req, err := newNodeRequest(ctx, base+nodePath, nr)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, body, err := roundTrip(req, base, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}, timeout)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, &serverError{base, ErrUnauthorized, firstLine(body)}
	case http.StatusForbidden:
		return nil, &serverError{base, ErrNodeNameTaken, firstLine(body)}
	case http.StatusServiceUnavailable:
		return nil, &serverError{base, ErrStarting, firstLine(body)}
	}
	return decodeBundle(base, resp, body)
}

func newNodeRequest(ctx context.Context, url string, nr NodeRequest) (*http.Request, error) {
	data, err := json.Marshal(nr)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func decodeBundle(base string, resp *http.Response, body []byte) (*NodeBundle, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s refused the node (%s): %s", base, resp.Status, firstLine(body))
	}
	var b NodeBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("%s sent a node bundle that does not decode: %w", base, err)
	}
	for _, f := range []struct{ what, v string }{
		{"CA bundle", b.CABundle}, {"client CA", b.ClientCA},
		{"node certificate", b.Node.Cert}, {"node key", b.Node.Key},
		{"serving certificate", b.Serving.Cert}, {"serving key", b.Serving.Key},
	} {
		if f.v == "" {
			return nil, fmt.Errorf("%s sent a node bundle without the %s", base, f.what)
		}
	}
	return &b, nil
}

// Renew asks the server for new certificates with the node's own client
// certificate (no token), over TLS verified by caBundle, the server CA
// bundle the node got when it joined.
func Renew(ctx context.Context, serverURL string, caBundle []byte, cred tls.Certificate, nr NodeRequest, opts JoinOptions) (*NodeBundle, error) {
	base, err := parseServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return nil, errors.New("the saved server CA bundle holds no certificate: join again with a token")
	}
	req, err := newNodeRequest(ctx, base+renewPath, nr)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{cred}}
	resp, body, err := roundTrip(req, base, tlsConfig, opts.Timeout)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, &serverError{base, ErrRefused, firstLine(body)}
	}
	return decodeBundle(base, resp, body)
}

// serverError carries the server's own line, which says what is wrong better
// than the sentinel it wraps.
type serverError struct {
	server   string
	sentinel error
	msg      string
}

func (e *serverError) Error() string {
	if e.msg == "" {
		return e.server + ": " + e.sentinel.Error()
	}
	return e.server + ": " + e.msg
}

func (e *serverError) Unwrap() error { return e.sentinel }

// transportError names the server and explains a certificate the server's
// own CA does not vouch for this address.
func transportError(base string, err error) error {
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		return fmt.Errorf("%s: the server's certificate is not valid for %s: add it on the server with --tls-san, or use --server with a name or address the certificate holds", base, hostErr.Host)
	}
	// url.Error repeats the method and the URL; the server is named already.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach %s: %w", base, err)
}

// firstLine makes a server's message safe to show on one line.
func firstLine(body []byte) string {
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, line)
	if r := []rune(line); len(r) > 300 {
		line = string(r[:300]) + "…"
	}
	return strings.TrimSpace(line)
}
