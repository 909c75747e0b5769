package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
	const (
		keep   = "left to oras-go"
		marker = "forwarded"
		refuse = "refused"
	)
	for _, tc := range []struct {
		name      string
		plain     bool     // registry over http
		named     []string // --token-realm
		challenge string   // REG stands for the registry's host:port, REGPORT for its port
		want      string
		msg       []string // in the refusal
	}{
		{"loopback realm named with its port", false, []string{"127.0.0.2:9443"}, `Bearer realm="https://127.0.0.2:9443/token",service="reg",scope="repository:a:pull"`, marker, nil},
		{"loopback realm named without port", false, []string{"127.0.0.2"}, `Bearer realm="https://127.0.0.2:9443/token"`, marker, nil},
		{"loopback realm named with another port", false, []string{"127.0.0.2:9444"}, `Bearer realm="https://127.0.0.2:9443/token"`, refuse, []string{"REG", "https://127.0.0.2:9443/token", "--token-realm 127.0.0.2:9443"}},
		{"loopback realm not named", false, nil, `Bearer realm="https://127.0.0.2:9443/token"`, refuse, []string{"REG", "127.0.0.2:9443", "--token-realm 127.0.0.2:9443"}},
		{"private realm named", false, []string{"10.1.2.3"}, `Bearer realm="https://10.1.2.3/token",service="reg"`, marker, nil},
		{"private realm not named", false, nil, `Bearer realm="https://10.1.2.3/token",service="reg"`, refuse, []string{"REG", "--token-realm 10.1.2.3:443"}},
		{"name resolving to a private address, named", false, []string{"AUTH.internal:443"}, `Bearer realm="https://auth.internal/token"`, marker, nil},
		{"name resolving to a private address, not named", false, nil, `Bearer realm="https://auth.internal/token"`, refuse, []string{"resolving to 10.0.0.5", "--token-realm auth.internal:443"}},
		{"ipv6 loopback named with brackets", false, []string{"[::1]:9443"}, `Bearer realm="https://[::1]:9443/token"`, marker, nil},
		{"ipv6 loopback named without port", false, []string{"::1"}, `Bearer realm="https://[::1]:9443/token"`, marker, nil},
		{"http realm for an http registry", true, []string{"127.0.0.2"}, `Bearer realm="http://127.0.0.2:9000/token"`, marker, nil},
		{"same host and port as the registry", false, nil, `Bearer realm="https://REG/token"`, keep, nil},
		{"same host, another port", false, nil, `Bearer realm="https://127.0.0.1:1/token"`, refuse, []string{"--token-realm 127.0.0.1:1"}},
		{"same host, another port, named", false, []string{"127.0.0.1:1"}, `Bearer realm="https://127.0.0.1:1/token"`, marker, nil},
		{"metadata service", false, nil, `Bearer realm="https://169.254.169.254/latest/meta-data"`, refuse, []string{"169.254.169.254", "metadata"}},
		{"ipv6 link-local", false, nil, `Bearer realm="https://[fe80::1]/token"`, refuse, []string{"metadata"}},
		{"Alibaba metadata", false, nil, `Bearer realm="https://100.100.100.200/token"`, refuse, []string{"metadata"}},
		{"AWS IMDS over IPv6", false, nil, `Bearer realm="https://[fd00:ec2::254]/latest/api/token"`, refuse, []string{"fd00:ec2::254", "metadata"}},
		{"metadata through NAT64", false, nil, `Bearer realm="https://[64:ff9b::a9fe:a9fe]/token"`, refuse, []string{"metadata"}},
		{"metadata through 6to4", false, nil, `Bearer realm="https://[2002:a9fe:a9fe::1]/token"`, refuse, []string{"metadata"}},
		{"Azure WireServer, a public address", false, nil, `Bearer realm="https://168.63.129.16/token"`, refuse, []string{"metadata"}},
		{"unspecified", false, nil, `Bearer realm="https://0.0.0.0/token"`, refuse, []string{"metadata"}},
		{"name resolving to link-local among others, named", false, []string{"metadata.internal"}, `Bearer realm="https://metadata.internal/token"`, refuse, []string{"169.254.169.254"}},
		{"name that does not resolve", false, nil, `Bearer realm="https://nowhere.invalid/token"`, keep, nil},
		{"http realm for an https registry", false, []string{"127.0.0.2"}, `Bearer realm="http://127.0.0.2:9000/token"`, keep, nil},
		{"public address", false, nil, `Bearer realm="https://203.0.113.7/token"`, keep, nil},
		{"public name", false, nil, `Bearer realm="https://auth.example.com/token"`, keep, nil},
		{"user info in a named realm", false, []string{"127.0.0.2"}, `Bearer realm="https://u:p@127.0.0.2/token"`, refuse, []string{"user info"}},
		{"other scheme", false, []string{"127.0.0.2"}, `Bearer realm="ftp://127.0.0.2/token"`, keep, nil},
		{"basic challenge", false, nil, `Basic realm="https://127.0.0.2/"`, keep, nil},
		// oras-go keeps the last realm of a challenge, this parser the first.
		{"realm given twice", false, nil, `Bearer realm="https://203.0.113.7/token",realm="https://127.0.0.1:1/token"`, refuse, []string{"twice"}},
		{"malformed bearer challenge", false, nil, `Bearer realm="https://127.0.0.1:1/token`, refuse, []string{"malformed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httpsReg
			if tc.plain {
				srv = httpReg
			}
			u, _ := url.Parse(srv.URL)
			challenge := strings.ReplaceAll(tc.challenge, "REG", u.Host)
			rt, err := NewRealmTransport(srv.Client().Transport, NewRealmForwardTransport(http.DefaultTransport.(*http.Transport)), tc.named)
			if err != nil {
				t.Fatal(err)
			}
			rt.lookup = fakeLookup
			req := httptest.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
			req.RequestURI = ""
			req.Header.Set("X-Challenge", challenge)
			resp, err := rt.RoundTrip(req)
			if tc.want == refuse {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("challenge passed as %q, want it refused", resp.Header.Get("Www-Authenticate"))
				}
				for _, m := range tc.msg {
					if m = strings.ReplaceAll(m, "REG", u.Host); !strings.Contains(err.Error(), m) {
						t.Errorf("refusal %q does not say %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Www-Authenticate")
			scheme, params, _ := parseChallenge(got)
			_, orig, _ := parseChallenge(challenge)
			if !strings.EqualFold(scheme, "Bearer") {
				if got != challenge {
					t.Errorf("challenge changed:\n got %s\nwant %s", got, challenge)
				}
				return
			}
			if len(params) != len(orig) {
				t.Fatalf("params %v, want %v", params, orig)
			}
			for i, p := range params {
				if p.key != "realm" || tc.want == keep {
					if p != orig[i] {
						t.Errorf("param %s = %q, want %q", p.key, p.value, orig[i].value)
					}
					continue
				}
				m, err := url.Parse(p.value)
				if err != nil || m.Scheme != u.Scheme || m.Host != u.Host || m.Path != RealmMarkerPath ||
					m.Query().Get("realm") != orig[i].value || m.Query().Get("sig") != rt.sign(u.Host, orig[i].value) {
					t.Errorf("realm %s, want the marker for %s on %s", p.value, orig[i].value, u.Host)
				}
			}
		})
	}
}

func TestTokenRealmFlagValues(t *testing.T) {
	for in, ok := range map[string]bool{
		"auth.corp": true, "auth.corp:5001": true, "10.0.0.5": true, "[fd00::5]:443": true, "fd00::5": true, "[fd00::5]": true,
		// Metadata addresses are refused even when named: naming one is a mistake worth saying.
		"169.254.169.254": false, "169.254.169.254:80": false, "[fd00:ec2::254]:80": false, "fd00:ec2::254": false, "100.100.100.200": false,
		"": false, "https://auth.corp/token": false, "auth.corp/token": false, "auth.corp:http": false, "auth.corp:0": false, "u@auth.corp": false,
		// The port range, at its ends and one past.
		"auth.corp:1": true, "auth.corp:65535": true, "auth.corp:65536": false,
	} {
		if _, err := NewRealmTransport(http.DefaultTransport, NewRealmForwardTransport(http.DefaultTransport.(*http.Transport)), []string{in}); (err == nil) != ok {
			t.Errorf("--token-realm %q: err %v, want ok=%v", in, err, ok)
		} else if err != nil && !strings.Contains(err.Error(), "--token-realm") {
			t.Errorf("--token-realm %q: error %q does not name the flag", in, err)
		}
	}
}

// listenOn127002 listens on 127.0.0.2, another loopback address than httptest's 127.0.0.1.
func listenOn127002(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot listen on 127.0.0.2 (CI=true: a test that cannot run fails instead of skipping): %v", err)
		}
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

// newRealmTransport is a RealmTransport over http.DefaultTransport, with the forwarding transport
// airlock uses, forwarding to the token services in named.
func newRealmTransport(t *testing.T, named ...string) *RealmTransport {
	t.Helper()
	rt, err := NewRealmTransport(http.DefaultTransport, NewRealmForwardTransport(http.DefaultTransport.(*http.Transport)), named)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// hostOf is the host:port of a URL.
func hostOf(rawURL string) string {
	u, _ := url.Parse(rawURL)
	return u.Host
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

	c := orasClient(newRealmTransport(t, hostOf(realm.URL)), u.Host)
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
	// Exactly the announced URL, then what oras-go adds.
	if want := "/token?tenant=blue&scope=repository%3Ateam%2Fapp%3Apull&service=reg"; r.RequestURI != want || r.Host != hostOf(realm.URL) {
		t.Errorf("forwarded request %s %s, want %s %s", r.Host, r.RequestURI, hostOf(realm.URL), want)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "alice" || pass != "s3cret" {
		t.Errorf("forwarded request lacks the credentials")
	}
}

// The realm gets exactly the URL the registry announced: path escapes, query order, repeated and empty
// parameters, and its own service parameter, kept as they were; only oras-go's service and scope are
// appended.
func TestRealmForwardKeepsTheAnnouncedURL(t *testing.T) {
	realm := startTokenRealm(t, issueGoodToken)
	const announced = "/t%2Fok/A%7Ex/?b=2&a=1&a=0&empty=&tenant=blue%20sky&service=announced"
	reg := bearerRegistry(t, realm.URL+announced)
	c := orasClient(newRealmTransport(t, hostOf(realm.URL)), hostOf(reg.URL))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/team/app/manifests/v1", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := realm.seen()
	if len(seen) != 1 {
		t.Fatalf("realm got %d requests, want 1", len(seen))
	}
	if want := announced + "&scope=repository%3Ateam%2Fapp%3Apull&service=reg"; seen[0].RequestURI != want {
		t.Errorf("realm was asked\n %s\nwant\n %s", seen[0].RequestURI, want)
	}
}

func TestRealmMarkerRefusals(t *testing.T) {
	realm := startTokenRealm(t, issueGoodToken)
	reg := bearerRegistry(t, realm.URL+"/token")
	other := bearerRegistry(t, realm.URL+"/other")
	rt := newRealmTransport(t, hostOf(realm.URL))
	do := func(rawURL string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
		return rt.RoundTrip(req)
	}
	marker := func(s *httptest.Server, r, sig string) string {
		return s.URL + RealmMarkerPath + "?" + url.Values{"realm": {r}, "sig": {sig}}.Encode()
	}
	// The marker each registry's challenge is rewritten to.
	markers := map[*httptest.Server]string{}
	for _, s := range []*httptest.Server{reg, other} {
		resp, err := do(s.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, params, _ := parseChallenge(resp.Header.Get("Www-Authenticate"))
		for _, p := range params {
			if strings.EqualFold(p.key, "realm") {
				markers[s] = p.value
			}
		}
	}
	regHost, otherHost := hostOf(reg.URL), hostOf(other.URL)
	for name, rawURL := range map[string]string{
		"never announced":                  marker(reg, "http://127.0.0.2:1/anything", ""),
		"signed for another registry":      marker(reg, realm.URL+"/other", rt.sign(otherHost, realm.URL+"/other")),
		"signed for another realm":         marker(reg, realm.URL+"/other", rt.sign(regHost, realm.URL+"/token")),
		"cloud metadata, never announced":  marker(reg, "http://169.254.169.254/latest/meta-data", ""),
		"no realm":                         reg.URL + RealmMarkerPath,
		"announced realm, another host":    strings.Replace(markers[reg], "127.0.0.1", "localhost", 1),
		"another registry's marker, moved": strings.Replace(markers[other], otherHost, regHost, 1),
	} {
		if _, err := do(rawURL); err == nil || !strings.Contains(err.Error(), "not announced") {
			t.Errorf("%s: err %v, want a refusal", name, err)
		}
	}
	if n := len(realm.seen()); n != 0 {
		t.Errorf("refused marker requests reached the realm %d times", n)
	}
	resp, err := do(markers[reg])
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
		rt := newRealmTransport(t, hostOf(realm.URL), hostOf(elsewhere.URL))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/team/app/manifests/v1", nil)
		resp, err := orasClient(rt, hostOf(reg.URL)).Do(req)
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
		"[fd00::1]:443":           true,
		"169.254.169.254:80":      false,
		"169.254.170.2:80":        false,
		"[fe80::1]:443":           false,
		"100.100.100.200:80":      false,
		"[fd00:ec2::254]:80":      false,
		"[fd20:ce::254]:80":       false,
		"[fd00:c1::a9fe:a9fe]:80": false,
		"192.0.0.192:80":          false,
		"168.63.129.16:80":        false,
		"[64:ff9b::a9fe:a9fe]:80": false,
		"[2002:a9fe:a9fe::1]:80":  false,
		"0.0.0.0:443":             false,
		"0.1.2.3:443":             false,
		"[::]:443":                false,
		"[::ffff:169.254.1.1]:80": false,
		"[ff02::1]:80":            false,
		"224.0.0.1:80":            false,
		"255.255.255.255:80":      false,
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

// The forwarding transport connects only to the addresses checked for the request: a request that
// forwardToRealm did not check is refused, and a name is not resolved a second time (DNS rebinding).
func TestRealmForwardPinsTheCheckedAddress(t *testing.T) {
	realm := startTokenRealm(t, issueGoodToken)
	_, port, _ := net.SplitHostPort(hostOf(realm.URL))

	fwd := NewRealmForwardTransport(http.DefaultTransport.(*http.Transport))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, realm.URL+"/token", nil)
	if _, err := fwd.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "not the address checked") {
		t.Errorf("unchecked request: %v, want refused", err)
	}

	for _, tc := range []struct {
		name    string
		answers []string // successive lookups of the realm's name
		ok      bool
	}{
		{"same answer each time; the transport itself never resolves the name", []string{"127.0.0.2", "127.0.0.2"}, true},
		{"rebinds to the metadata service after the challenge was checked", []string{"127.0.0.2", "169.254.169.254"}, false},
		{"rebinds to AWS IMDS over IPv6", []string{"127.0.0.2", "fd00:ec2::254"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(realm.seen())
			reg := bearerRegistry(t, "http://rebind.invalid:"+port+"/token")
			rt := newRealmTransport(t, "rebind.invalid")
			var mu sync.Mutex
			n := 0
			rt.lookup = func(host string) ([]netip.Addr, error) {
				mu.Lock()
				defer mu.Unlock()
				if host != "rebind.invalid" || n >= len(tc.answers) {
					return nil, errors.New("no such host")
				}
				n++
				return []netip.Addr{netip.MustParseAddr(tc.answers[n-1])}, nil
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/team/app/manifests/v1", nil)
			resp, err := orasClient(rt, hostOf(reg.URL)).Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			if got := len(realm.seen()) - before; tc.ok != (err == nil && got == 1) {
				t.Errorf("err %v, %d requests at the realm; want ok=%v", err, got, tc.ok)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "metadata")) {
				t.Errorf("err %v, want the metadata refusal", err)
			}
		})
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

// ---- Attacks on the token-realm forwarder (issue 9). Each one succeeded before the realm allow-list.

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// dockerLogin points DOCKER_CONFIG at a config.json holding alice:s3cret for host, as docker login writes it.
func dockerLogin(t *testing.T, host string) {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// hostileRegistry demands a bearer token, announces realm for it, and records the tokens it is handed.
type hostileRegistry struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
}

func startHostileRegistry(t *testing.T, realm string) *hostileRegistry {
	h := &hostileRegistry{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			h.mu.Lock()
			h.tokens = append(h.tokens, strings.TrimPrefix(a, "Bearer "))
			h.mu.Unlock()
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="reg",scope="repository:team/app:pull"`, realm))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostileRegistry) handed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.tokens...)
}

// internalTokenService hands its token to any caller, as an internal service that trusts its network
// does, and records the credentials it was sent.
func internalTokenService(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"token":"internal-token"}`)
}

// fetchThroughAirlock asks reg for team/app:v1 with airlock's own client, the way every command does.
func fetchThroughAirlock(t *testing.T, r *Registries, regURL string) error {
	t.Helper()
	u, _ := url.Parse(regURL)
	if _, err := r.Repository(u.Host + "/team/app"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, regURL+"/v2/team/app/manifests/v1", nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// leaked reports what reached a token service: the Basic credentials of each request.
func leaked(reqs []*http.Request) []string {
	var out []string
	for _, r := range reqs {
		if u, p, ok := r.BasicAuth(); ok {
			out = append(out, u+":"+p)
		}
	}
	return out
}

func TestRealmAttackOtherLoopbackService(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *tokenRealm
	}{
		// Same host name as the registry (127.0.0.1), another port: oras-go accepts it by itself.
		{"another port of the registry's own host", func(t *testing.T) *tokenRealm {
			tr := &tokenRealm{}
			tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tr.mu.Lock()
				tr.requests = append(tr.requests, r)
				tr.mu.Unlock()
				internalTokenService(w, r)
			}))
			t.Cleanup(tr.Close)
			return tr
		}},
		// Another loopback address: the forwarder rewrote it for any named registry.
		{"another loopback address", func(t *testing.T) *tokenRealm { return startTokenRealm(t, internalTokenService) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := tc.start(t)
			reg := startHostileRegistry(t, svc.URL+"/v1/token")
			u, _ := url.Parse(reg.URL)
			dockerLogin(t, u.Host)
			r, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = fetchThroughAirlock(t, r, reg.URL)
			t.Logf("fetch: %v", err)
			for _, want := range []string{u.Host, svc.URL, "--token-realm " + hostOf(svc.URL)} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v does not name %s", err, want)
				}
			}
			if creds := leaked(svc.seen()); len(creds) != 0 {
				t.Errorf("ATTACK SUCCEEDED: the registry's credentials %v reached %s, which the user never named", creds, svc.URL)
			}
			if got := reg.handed(); len(got) != 0 {
				t.Errorf("ATTACK SUCCEEDED: the internal service's token %v was handed to the registry", got)
			}
		})
	}
}

// fakeLookupWith resolves the names in m, then those of fakeLookup.
func fakeLookupWith(m map[string]string) func(string) ([]netip.Addr, error) {
	return func(host string) ([]netip.Addr, error) {
		if a, ok := m[host]; ok {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		return fakeLookup(host)
	}
}

func TestRealmAttackPrivateAndMetadataHosts(t *testing.T) {
	for _, tc := range []struct {
		name, realm string
		named       []string // --token-realm: metadata stays refused even when named
		msg         string
	}{
		{"private address", "http://10.1.2.3/token", nil, "--token-realm 10.1.2.3:80"},
		{"name resolving to a private address", "http://auth.internal/token", nil, "--token-realm auth.internal:80"},
		{"AWS IMDS over IPv6", "http://[fd00:ec2::254]/latest/api/token", nil, "metadata"},
		{"name resolving to AWS IMDS over IPv6", "http://imds6.internal/latest/api/token", nil, "metadata"},
		{"name resolving to AWS IMDS over IPv6, named", "http://imds6.internal/latest/api/token", []string{"imds6.internal"}, "metadata"},
		{"AWS IMDS", "http://169.254.169.254/latest/api/token", nil, "metadata"},
		{"name resolving to AWS IMDS, named", "http://imds.internal/latest/api/token", []string{"imds.internal"}, "metadata"},
		{"Alibaba metadata", "http://100.100.100.200/latest/meta-data", nil, "metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := startHostileRegistry(t, tc.realm)
			u, _ := url.Parse(reg.URL)
			dockerLogin(t, u.Host)
			r, err := New(Options{TokenRealms: tc.named})
			if err != nil {
				t.Fatal(err)
			}
			r.realms.lookup = fakeLookupWith(map[string]string{"imds6.internal": "fd00:ec2::254", "imds.internal": "169.254.169.254"})
			// Stands in for the network: records what would have been sent where.
			var mu sync.Mutex
			var sent []*http.Request
			r.realms.forward = roundTripFunc(func(req *http.Request) (*http.Response, error) {
				mu.Lock()
				sent = append(sent, req)
				mu.Unlock()
				rec := httptest.NewRecorder()
				internalTokenService(rec, req)
				resp := rec.Result()
				resp.Request = req
				return resp, nil
			})
			err = fetchThroughAirlock(t, r, reg.URL)
			t.Logf("fetch: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), u.Host) {
				t.Errorf("error %v, want one naming %s and %q", err, u.Host, tc.msg)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, req := range sent {
				t.Errorf("ATTACK SUCCEEDED: token request sent to %s with credentials %v", req.URL, leaked([]*http.Request{req}))
			}
			if got := reg.handed(); len(got) != 0 {
				t.Errorf("ATTACK SUCCEEDED: token %v handed to the registry", got)
			}
		})
	}
}

// TestRealmAttackThroughProxy runs realmProxyChild in a child process with HTTP_PROXY set (net/http
// reads the proxy environment once per process). The realm's name resolves, for airlock, to a loopback
// token service; the proxy stands for whatever the proxy would connect to under that name.
func TestRealmAttackThroughProxy(t *testing.T) {
	if os.Getenv("AIRLOCK_REALM_PROXY_CHILD") != "" {
		realmProxyChild(t)
		return
	}
	var mu sync.Mutex
	var proxied []*http.Request
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proxied = append(proxied, r)
		mu.Unlock()
		internalTokenService(w, r)
	}))
	t.Cleanup(proxy.Close)
	realm := startTokenRealm(t, issueGoodToken)
	_, port, _ := net.SplitHostPort(realm.Listener.Addr().String())
	realmURL := "http://auth.internal:" + port + "/token"
	reg := startHostileRegistry(t, realmURL)
	u, _ := url.Parse(reg.URL)
	cfg := t.TempDir()
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{
		u.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}}})
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRealmAttackThroughProxy$", "-test.v")
	cmd.Env = append(os.Environ(), "AIRLOCK_REALM_PROXY_CHILD=1", "DOCKER_CONFIG="+cfg,
		"HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL, "NO_PROXY=", "no_proxy=",
		"AIRLOCK_TEST_REGISTRY="+reg.URL, "AIRLOCK_TEST_TOKEN_REALM=auth.internal:"+port)
	out, err := cmd.CombinedOutput()
	t.Logf("child (%v):\n%s", err, out)
	if !strings.Contains(string(out), "fetch: <nil>") {
		t.Errorf("the named realm was not reached directly")
	}
	if n := len(realm.seen()); n != 1 {
		t.Errorf("the realm at the checked address got %d requests, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range proxied {
		t.Errorf("ATTACK SUCCEEDED: the proxy, not the checked address, got %s %s with credentials %v", r.Method, r.URL, leaked([]*http.Request{r}))
	}
}

func realmProxyChild(t *testing.T) {
	r, err := New(Options{TokenRealms: []string{os.Getenv("AIRLOCK_TEST_TOKEN_REALM")}})
	if err != nil {
		t.Fatal(err)
	}
	r.realms.lookup = fakeLookupWith(map[string]string{"auth.internal": "127.0.0.2"})
	t.Logf("fetch: %v", fetchThroughAirlock(t, r, os.Getenv("AIRLOCK_TEST_REGISTRY")))
}

// A registry announces, as its own realm, a marker URL for the realm another registry announced: on
// that registry's host, or on its own. Its credentials would go to the other registry's token service,
// which the user named for that registry, and that service's token back to it.
func TestRealmAttackForgedMarker(t *testing.T) {
	for _, onHost := range []string{"the other registry's host", "its own host"} {
		t.Run(onHost, func(t *testing.T) {
			svc := startTokenRealm(t, internalTokenService)
			b := startHostileRegistry(t, svc.URL+"/token")
			bu, _ := url.Parse(b.URL)
			forgedOn := b
			if onHost == "its own host" {
				forgedOn = nil
			}
			var a *hostileRegistry
			if forgedOn != nil {
				a = startHostileRegistry(t, forgedOn.URL+RealmMarkerPath+"?"+url.Values{"realm": {svc.URL + "/token"}}.Encode())
			} else {
				// Its own host is only known once it listens: announce a marker relative to it.
				a = &hostileRegistry{}
				a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
						a.mu.Lock()
						a.tokens = append(a.tokens, strings.TrimPrefix(auth, "Bearer "))
						a.mu.Unlock()
						return
					}
					forged := "http://" + r.Host + RealmMarkerPath + "?" + url.Values{"realm": {svc.URL + "/token"}}.Encode()
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="reg"`, forged))
					w.WriteHeader(http.StatusUnauthorized)
				}))
				t.Cleanup(a.Close)
			}
			au, _ := url.Parse(a.URL)
			dockerLogin(t, au.Host)
			r, err := New(Options{TokenRealms: []string{hostOf(svc.URL)}})
			if err != nil {
				t.Fatal(err)
			}
			// B is a registry the user uses too; its challenge was seen first.
			if _, err := r.Repository(bu.Host + "/team/app"); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.URL+"/v2/", nil)
			if resp, err := r.realms.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
			err = fetchThroughAirlock(t, r, a.URL)
			t.Logf("fetch from A: %v", err)
			if err == nil {
				t.Errorf("fetch from A succeeded")
			}
			if creds := leaked(svc.seen()); len(creds) != 0 {
				t.Errorf("ATTACK SUCCEEDED: registry A's credentials %v reached registry B's token service", creds)
			}
			if got := a.handed(); len(got) != 0 {
				t.Errorf("ATTACK SUCCEEDED: B's token service's token %v was handed to registry A", got)
			}
		})
	}
}

// TestParseChallengeEdges: an empty unquoted value before the next parameter is empty (the next
// parameter still parses), and a quoted value that ends in a lone backslash is malformed (not read
// past the end).
func TestParseChallengeEdges(t *testing.T) {
	scheme, params, ok := parseChallenge(`Bearer realm=,service=reg`)
	if !ok || scheme != "Bearer" || len(params) != 2 || params[0] != (challengeParam{"realm", ""}) || params[1] != (challengeParam{"service", "reg"}) {
		t.Errorf("empty value: %q %+v %v; want Bearer [realm= service=reg]", scheme, params, ok)
	}
	for _, s := range []string{`Bearer realm="abc\`, `Bearer realm="\`} {
		if _, _, ok := parseChallenge(s); ok {
			t.Errorf("%s: parsed; want malformed", s)
		}
	}
}

// TestSameHostName: names compare without case; addresses compare as addresses (an IPv4-mapped
// IPv6 address is its IPv4 address); a name is never the same as an address, nor two different
// addresses, nor two unparsable names that differ.
func TestSameHostName(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"Auth.Corp", "auth.corp", true},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"fd00::5", "FD00:0::5", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"auth.corp", "127.0.0.1", false},
		{"127.0.0.1", "auth.corp", false},
		{"auth.corp", "other.corp", false},
	} {
		if got := sameHostName(c.a, c.b); got != c.want {
			t.Errorf("sameHostName(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
