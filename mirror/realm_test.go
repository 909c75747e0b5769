package mirror

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// challengeServer answers every request with 401 and the challenge given in the X-Challenge header.
func challengeServer(t *testing.T, tls bool) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", r.Header.Get("X-Challenge"))
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv := httptest.NewUnstartedServer(h)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// fakeLookup resolves the names of the table below without DNS.
func fakeLookup(host string) ([]netip.Addr, error) {
	switch host {
	case "auth.internal":
		return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
	case "metadata.internal":
		return []netip.Addr{netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("169.254.169.254")}, nil
	case "auth.example.com":
		return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
	}
	return nil, errors.New("no such host")
}

func TestRealmRewrite(t *testing.T) {
	httpsReg, httpReg := challengeServer(t, true), challengeServer(t, false)
	for _, tc := range []struct {
		name      string
		plain     bool // registry over http
		unnamed   bool // registry host not named by the user
		challenge string
		rewrite   bool
	}{
		{"loopback realm on another address", false, false, `Bearer realm="https://127.0.0.2:9443/token",service="reg",scope="repository:a:pull"`, true},
		{"private realm", false, false, `Bearer realm="https://10.1.2.3/token",service="reg"`, true},
		{"name resolving to a private address", false, false, `Bearer realm="https://auth.internal/token"`, true},
		{"ipv6 loopback", false, false, `Bearer realm="https://[::1]:9443/token"`, true},
		{"http realm for an http registry", true, false, `Bearer realm="http://127.0.0.2:9000/token"`, true},
		{"host not named", false, true, `Bearer realm="https://127.0.0.2:9443/token"`, false},
		{"metadata service", false, false, `Bearer realm="https://169.254.169.254/latest/meta-data"`, false},
		{"ipv6 link-local", false, false, `Bearer realm="https://[fe80::1]/token"`, false},
		{"cgnat metadata service", false, false, `Bearer realm="https://100.100.100.200/token"`, false},
		{"unspecified", false, false, `Bearer realm="https://0.0.0.0/token"`, false},
		{"name resolving to link-local among others", false, false, `Bearer realm="https://metadata.internal/token"`, false},
		{"name that does not resolve", false, false, `Bearer realm="https://nowhere.invalid/token"`, false},
		{"http realm for an https registry", false, false, `Bearer realm="http://127.0.0.2:9000/token"`, false},
		{"public address", false, false, `Bearer realm="https://203.0.113.7/token"`, false},
		{"public name", false, false, `Bearer realm="https://auth.example.com/token"`, false},
		{"same host as the registry", false, false, `Bearer realm="https://127.0.0.1:1/token"`, false},
		{"user info in the realm", false, false, `Bearer realm="https://u:p@127.0.0.2/token"`, false},
		{"other scheme", false, false, `Bearer realm="ftp://127.0.0.2/token"`, false},
		{"basic challenge", false, false, `Basic realm="https://127.0.0.2/"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httpsReg
			if tc.plain {
				srv = httpReg
			}
			rt := NewRealmTransport(srv.Client().Transport, nil)
			rt.lookup = fakeLookup
			u, _ := url.Parse(srv.URL)
			if !tc.unnamed {
				rt.Name(u.Host)
			}
			req := httptest.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
			req.RequestURI = ""
			req.Header.Set("X-Challenge", tc.challenge)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Www-Authenticate")
			if !tc.rewrite {
				if got != tc.challenge {
					t.Errorf("challenge rewritten:\n got %s\nwant %s", got, tc.challenge)
				}
				return
			}
			scheme, params, ok := parseChallenge(got)
			if !ok || scheme != "Bearer" {
				t.Fatalf("rewritten challenge %q does not parse", got)
			}
			_, orig, _ := parseChallenge(tc.challenge)
			if len(params) != len(orig) {
				t.Fatalf("params %v, want %v with the realm replaced", params, orig)
			}
			for i, p := range params {
				if p.key != "realm" {
					if p != orig[i] {
						t.Errorf("param %s = %q, want %q", p.key, p.value, orig[i].value)
					}
					continue
				}
				want := u.Scheme + "://" + u.Host + RealmMarkerPath + "?realm=" + url.QueryEscape(orig[i].value)
				if p.value != want {
					t.Errorf("realm %s, want %s", p.value, want)
				}
			}
		})
	}
}

// listenOn127002 listens on 127.0.0.2, another loopback address than httptest's 127.0.0.1.
func listenOn127002(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2 (loopback other than 127.0.0.1 is Linux only): %v", err)
	}
	return l
}

// tokenRealm is a token service on 127.0.0.2 that records what it was sent.
type tokenRealm struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func startTokenRealm(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *tokenRealm {
	tr := &tokenRealm{}
	tr.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.requests = append(tr.requests, r)
		tr.mu.Unlock()
		h(w, r)
	}))
	tr.Listener.Close()
	tr.Listener = listenOn127002(t)
	tr.Start()
	t.Cleanup(tr.Close)
	return tr
}

func (tr *tokenRealm) seen() []*http.Request {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*http.Request(nil), tr.requests...)
}

// bearerRegistry demands "Bearer good-token" and points at realm for it.
func bearerRegistry(t *testing.T, realm string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer good-token" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="reg",scope="repository:team/app:pull"`, realm))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func issueGoodToken(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"token":"good-token"}`)
}

func orasClient(rt http.RoundTripper, host string) *auth.Client {
	return &auth.Client{
		Client:     &http.Client{Transport: rt},
		Cache:      auth.NewCache(),
		Credential: auth.StaticCredential(host, auth.Credential{Username: "alice", Password: "s3cret"}),
	}
}

func TestRealmForwardWithOrasClient(t *testing.T) {
	realm := startTokenRealm(t, issueGoodToken)
	reg := bearerRegistry(t, realm.URL+"/token?tenant=blue")
	u, _ := url.Parse(reg.URL)
	get := func(c *auth.Client) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/team/app/manifests/v1", nil)
		return c.Do(req)
	}

	// oras-go alone refuses a realm on another loopback address.
	if _, err := get(orasClient(http.DefaultTransport, u.Host)); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("plain oras-go: err %v, want the loopback refusal", err)
	}
	if n := len(realm.seen()); n != 0 {
		t.Fatalf("plain oras-go reached the realm %d times", n)
	}

	rt := NewRealmTransport(http.DefaultTransport, nil)
	rt.Name(u.Host)
	c := orasClient(rt, u.Host)
	for range 2 { // the second request uses oras-go's token cache
		resp, err := get(c)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s, want 200 with the token", resp.Status)
		}
	}
	seen := realm.seen()
	if len(seen) != 1 {
		t.Fatalf("realm got %d requests, want 1 (then the cached token)", len(seen))
	}
	r := seen[0]
	q := r.URL.Query()
	if r.URL.Path != "/token" || q.Get("tenant") != "blue" || q.Get("service") != "reg" ||
		q.Get("scope") != "repository:team/app:pull" || q.Has("realm") {
		t.Errorf("forwarded request %s, want /token with tenant, service and scope and no realm", r.URL)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "alice" || pass != "s3cret" {
		t.Errorf("forwarded request lacks the credentials")
	}
}

func TestRealmMarkerRefusals(t *testing.T) {
	realm := startTokenRealm(t, issueGoodToken)
	reg := bearerRegistry(t, realm.URL+"/token")
	other := bearerRegistry(t, realm.URL+"/other")
	rt := NewRealmTransport(http.DefaultTransport, nil)
	for _, s := range []*httptest.Server{reg, other} {
		u, _ := url.Parse(s.URL)
		rt.Name(u.Host)
	}
	do := func(rawURL string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
		return rt.RoundTrip(req)
	}
	marker := func(s *httptest.Server, r string) string {
		return s.URL + RealmMarkerPath + "?" + url.Values{"realm": {r}}.Encode()
	}
	// Announce each registry's realm.
	for _, s := range []*httptest.Server{reg, other} {
		resp, err := do(s.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for name, rawURL := range map[string]string{
		"never announced":                 marker(reg, "http://127.0.0.2:1/anything"),
		"announced by another registry":   marker(reg, realm.URL+"/other"),
		"cloud metadata, never announced": marker(reg, "http://169.254.169.254/latest/meta-data"),
		"no realm":                        reg.URL + RealmMarkerPath,
		"announced realm, unnamed host":   strings.Replace(marker(reg, realm.URL+"/token"), "127.0.0.1", "localhost", 1),
	} {
		if _, err := do(rawURL); err == nil || !strings.Contains(err.Error(), "not announced") {
			t.Errorf("%s: err %v, want a refusal", name, err)
		}
	}
	if n := len(realm.seen()); n != 0 {
		t.Errorf("refused marker requests reached the realm %d times", n)
	}
	resp, err := do(marker(reg, realm.URL+"/token"))
	if err != nil {
		t.Fatalf("announced realm: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(realm.seen()) != 1 {
		t.Errorf("announced realm without credentials: %s, %d requests; want the realm's own 401", resp.Status, len(realm.seen()))
	}
}

func TestRealmRedirects(t *testing.T) {
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a redirect to another host was followed: %s", r.URL)
	}))
	t.Cleanup(elsewhere.Close)
	realm := startTokenRealm(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/token?"+r.URL.RawQuery, http.StatusFound)
		default:
			issueGoodToken(w, r)
		}
	})
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"/moved", true}, {"/away", false}} {
		reg := bearerRegistry(t, realm.URL+tc.path)
		u, _ := url.Parse(reg.URL)
		rt := NewRealmTransport(http.DefaultTransport, nil)
		rt.Name(u.Host)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/team/app/manifests/v1", nil)
		resp, err := orasClient(rt, u.Host).Do(req)
		if tc.ok {
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("%s: same-origin redirect: %v", tc.path, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), "another origin") {
			t.Errorf("%s: err %v, want the cross-host redirect refused", tc.path, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

func TestRealmDialControl(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.2:443":           true,
		"10.0.0.1:443":            true,
		"169.254.169.254:80":      false,
		"[fe80::1]:443":           false,
		"100.100.100.200:80":      false,
		"0.0.0.0:443":             false,
		"[::ffff:169.254.1.1]:80": false,
	} {
		if err := RealmDialControl("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("%s: err %v, want allowed=%v", addr, err, ok)
		}
	}
	// The guard holds on a real dial too.
	d := &net.Dialer{Control: RealmDialControl}
	if _, err := d.DialContext(t.Context(), "tcp", "169.254.169.254:80"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial 169.254.169.254: %v, want refused by the guard", err)
	}
}

func TestChallengeRoundTrip(t *testing.T) {
	in := `Bearer realm="https://a/t?x=\"q\"",service=reg, scope="repository:a:pull,push"`
	scheme, params, ok := parseChallenge(in)
	if !ok || scheme != "Bearer" || len(params) != 3 || params[0].value != `https://a/t?x="q"` ||
		params[1].value != "reg" || params[2].value != "repository:a:pull,push" {
		t.Fatalf("parse %q: %q %v %v", in, scheme, params, ok)
	}
	_, again, ok := parseChallenge(formatChallenge(scheme, params))
	if !ok || fmt.Sprint(again) != fmt.Sprint(params) {
		t.Errorf("format then parse: %v, want %v", again, params)
	}
}
