package registries

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proxy serves, on loopback, the endpoints of mirrors with rewrites:
// containerd's hosts.toml names http://127.0.0.1:<port>/<route> for each,
// and the proxy forwards pulls to the real endpoint with the repository
// name rewritten, over the endpoint's TLS settings.
//
// The proxy answers the endpoint's authentication challenges itself, with
// the configs entry of the endpoint's host, and never passes them on:
// containerd would ask the token service for a token scoped to the name
// it knows (library/x), not the rewritten one (test/x) the endpoint checks,
// and it would look credentials up by the proxy's address, which every
// route shares. So the proxy drops containerd's Authorization header, and
// a 401 it cannot answer reaches containerd without its challenge, which
// containerd reports as the registry's 401 Unauthorized.
//
// Every request must carry the proxy's secret in the SecretHeader header,
// which only the hosts.toml files (0600, root's) hold: the proxy pulls with
// the node's credentials, and no other local user or host-network pod may.
// A header rather than a path, because containerd's errors, shown in pod
// events, name the URL.
type Proxy struct {
	routes []*upstream
	secret string
	// Logf reports failures to reach an endpoint.
	Logf func(format string, args ...any)
}

// upstream is one mirror endpoint behind the proxy.
type upstream struct {
	base     *url.URL // the endpoint's API root, …/v2
	rewrites []Rewrite
	auth     *Auth
	client   *http.Client

	mu     sync.Mutex
	basic  bool             // the endpoint asked for basic auth
	tokens map[string]token // bearer tokens by scope
}

type token struct {
	value   string
	expires time.Time
}

// NewProxy prepares the proxy for c's mirrors with rewrites.
func NewProxy(c *Config) (*Proxy, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	p := &Proxy{secret: hex.EncodeToString(b)}
	for _, r := range c.routes() {
		h := c.hostConfig(r.endpoint.Host)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if h.TLS != nil {
			tc, err := h.TLS.Config("configs." + r.endpoint.Host + ".tls")
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = tc
		}
		base := *r.endpoint
		// containerd's rule for an endpoint's API root: /v2 is appended
		// unless the path ends with it.
		if !strings.HasSuffix(base.Path, "/v2") {
			base.Path += "/v2"
		}
		p.routes = append(p.routes, &upstream{
			base: &base, rewrites: r.mirror.Rewrites, auth: h.Auth,
			client: &http.Client{Transport: tr, CheckRedirect: dropAuthElsewhere}, tokens: map[string]token{},
		})
	}
	return p, nil
}

// SecretHeader carries the proxy's secret from containerd.
const SecretHeader = "X-Kubox-Registry-Proxy"

// Secret is what requests must carry in SecretHeader, for HostsFiles.
func (p *Proxy) Secret() string { return p.secret }

// dropAuthElsewhere keeps the endpoint's credentials from a redirect to
// another host:port (blob storage, whose signed URLs refuse a second
// credential); Go's client keeps them for another port of the same host.
func dropAuthElsewhere(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// repoPath splits an API path below /v2 into the repository name and what
// follows it; pulls use these four kinds of request.
var repoPath = regexp.MustCompile(`^/(.+)/((?:manifests|blobs|tags|referrers)/[^/]+)$`)

// ServeHTTP implements http.Handler: /<route>/v2/<name>/<kind>/<ref>.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(SecretHeader)), []byte(p.secret)) != 1 {
		http.Error(w, "kubox's registry proxy serves containerd only", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "kubox's registry proxy serves pulls only", http.StatusMethodNotAllowed)
		return
	}
	idx, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(p.routes) || !strings.HasPrefix("/"+rest, "/v2") {
		http.NotFound(w, r)
		return
	}
	u := p.routes[i]
	api := strings.TrimPrefix("/"+rest, "/v2")
	scope := ""
	if m := repoPath.FindStringSubmatch(api); m != nil {
		name := u.rewrite(m[1])
		api = "/" + name + "/" + m[2]
		scope = "repository:" + name + ":pull"
	} else if api != "" && api != "/" {
		http.NotFound(w, r)
		return
	}
	target := *u.base
	target.Path += api
	target.RawQuery = r.URL.RawQuery
	resp, err := u.do(r, target.String(), scope)
	if err != nil {
		if p.Logf != nil {
			p.Logf("registry proxy: %s %s: %v", r.Method, target.Redacted(), err)
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if hopByHop[http.CanonicalHeaderKey(k)] || (resp.StatusCode == http.StatusUnauthorized && strings.EqualFold(k, "WWW-Authenticate")) {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// rewrite applies the first rule that matches name.
func (u *upstream) rewrite(name string) string {
	for _, rw := range u.rewrites {
		if rw.Pattern.MatchString(name) {
			return rw.Pattern.ReplaceAllString(name, rw.Replacement)
		}
	}
	return name
}

var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// do sends r to target with the endpoint's credentials, answering one
// challenge. Redirects (blob storage) are followed by the client.
func (u *upstream) do(r *http.Request, target, scope string) (*http.Response, error) {
	sentBasic := false
	send := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target, nil)
		if err != nil {
			return nil, err
		}
		for k, vs := range r.Header {
			k = http.CanonicalHeaderKey(k)
			if hopByHop[k] || k == "Authorization" || k == SecretHeader {
				continue
			}
			req.Header[k] = vs
		}
		sentBasic = u.authorize(req, scope) == "basic"
		return u.client.Do(req)
	}
	resp, err := send()
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	answered, err := u.answer(r.Context(), resp.Header.Values("WWW-Authenticate"), scope, sentBasic)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if !answered {
		return resp, nil
	}
	resp.Body.Close()
	return send()
}

// authorize adds what an earlier challenge asked for, and says which
// ("bearer", "basic" or "").
func (u *upstream) authorize(req *http.Request, scope string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.tokens[scope]; ok && time.Now().Before(t.expires) {
		req.Header.Set("Authorization", "Bearer "+t.value)
		return "bearer"
	}
	if u.basic {
		req.SetBasicAuth(u.auth.Username, u.auth.Password)
		return "basic"
	}
	return ""
}

// answer prepares the answer to an endpoint's challenges: basic auth with
// the configured credentials, or a bearer token from the endpoint's token
// service (anonymous without credentials). It returns false when there is
// nothing to answer with, or the basic credentials sent were refused.
func (u *upstream) answer(ctx context.Context, headers []string, scope string, sentBasic bool) (bool, error) {
	var basic bool
	key := scope // what authorize looks the token up by
	for _, h := range headers {
		scheme, params := parseChallenge(h)
		switch strings.ToLower(scheme) {
		case "bearer":
			if params["realm"] == "" {
				continue
			}
			if s := params["scope"]; s != "" {
				scope = s
			}
			t, err := u.fetchToken(ctx, params["realm"], params["service"], scope)
			if err != nil {
				return false, err
			}
			u.mu.Lock()
			u.tokens[key] = t
			u.mu.Unlock()
			return true, nil
		case "basic":
			basic = true
		}
	}
	if !basic || sentBasic || u.auth == nil || u.auth.Username == "" {
		return false, nil
	}
	u.mu.Lock()
	u.basic = true
	u.mu.Unlock()
	return true, nil
}

// fetchToken asks a token service for a pull token: an OAuth2 refresh
// token grant with an identity token (when there is no username, as
// containerd decides), else a GET with basic auth (or none).
func (u *upstream) fetchToken(ctx context.Context, realm, service, scope string) (token, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	var req *http.Request
	var err error
	if u.auth != nil && u.auth.Username == "" && u.auth.IdentityToken != "" {
		q.Set("grant_type", "refresh_token")
		q.Set("refresh_token", u.auth.IdentityToken)
		q.Set("client_id", "kubox")
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(q.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		ru, perr := url.Parse(realm)
		if perr != nil {
			return token{}, fmt.Errorf("token service %q: %v", realm, perr)
		}
		rq := ru.Query()
		for k, v := range q {
			rq[k] = v
		}
		ru.RawQuery = rq.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, ru.String(), nil)
		if err == nil && u.auth != nil && u.auth.Username != "" {
			req.SetBasicAuth(u.auth.Username, u.auth.Password)
		}
	}
	if err != nil {
		return token{}, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return token{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return token{}, fmt.Errorf("token service %s answered %s", realm, resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return token{}, fmt.Errorf("token service %s: %v", realm, err)
	}
	t := token{value: body.AccessToken, expires: time.Now().Add(60 * time.Second)}
	if t.value == "" {
		t.value = body.Token
	}
	if t.value == "" {
		return token{}, fmt.Errorf("token service %s sent no token", realm)
	}
	if body.ExpiresIn > 0 {
		// Renewed a little early, so that no request carries a token that
		// expires on its way.
		t.expires = time.Now().Add(time.Duration(body.ExpiresIn)*time.Second - 5*time.Second)
	}
	return t, nil
}

// parseChallenge splits a WWW-Authenticate value into its scheme and
// parameters (key=value or key="quoted, value").
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val strings.Builder
		if strings.HasPrefix(after, `"`) {
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				val.WriteByte(after[i])
			}
			after = after[min(i+1, len(after)):]
		} else {
			v, _, _ := strings.Cut(after, ",")
			val.WriteString(strings.TrimSpace(v))
			after = after[len(v):]
		}
		params[key] = val.String()
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after), ","))
	}
	return scheme, params
}
