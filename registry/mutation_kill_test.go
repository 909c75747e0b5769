package registry

// Tests that pin behaviour gremlins found unasserted (issue 20, docs/mutation.md): each names the
// mutant it kills.

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParseChallengeEscapeAdvances: an escaped character is taken once and the parse goes on past it
// (challenge.go:66, i++; as i-- the loop never ends: bounded here by a deadline, so the mutant fails
// instead of hanging the run).
func TestParseChallengeEscapeAdvances(t *testing.T) {
	type result struct {
		params []challengeParam
		ok     bool
	}
	done := make(chan result, 1)
	go func() {
		_, params, ok := parseChallenge(`Bearer realm="a\"b\\c",service=reg`)
		done <- result{params, ok}
	}()
	select {
	case r := <-done:
		if !r.ok || len(r.params) != 2 || r.params[0] != (challengeParam{"realm", `a"b\c`}) || r.params[1] != (challengeParam{"service", "reg"}) {
			t.Errorf("parse: %+v %v; want realm=a\"b\\c service=reg", r.params, r.ok)
		}
	case <-time.After(2 * time.Second):
		// A goroutine cannot be stopped: end the test binary rather than let the loop eat memory.
		panic("parseChallenge did not return within 2s on an escaped quote: the escape does not advance")
	}
}

// TestCheckChallengeEmpty: an empty or blank challenge is no Bearer challenge, passed on as it came
// (realm.go:202, len(f) > 0; as >= 0 it indexes an empty slice).
func TestCheckChallengeEmpty(t *testing.T) {
	rt := newRealmTransport(t)
	reg := &url.URL{Scheme: "https", Host: "reg.example"}
	for _, c := range []string{"", "  \t"} {
		got, err := rt.checkChallenge(reg, c)
		if err != nil || got != c {
			t.Errorf("checkChallenge(%q) = %q, %v; want it unchanged", c, got, err)
		}
	}
	if _, err := rt.checkChallenge(reg, `Bearer realm="x`); err == nil || !strings.Contains(err.Error(), "malformed Bearer challenge") {
		t.Errorf("unterminated Bearer challenge: %v, want refused as malformed", err)
	}
}

// TestResolveNoAddress: a lookup that finds no address and no error is an error naming the host; a
// lookup error is returned as it is (realm.go:284, err == nil).
func TestResolveNoAddress(t *testing.T) {
	rt := newRealmTransport(t)
	lookupErr := errors.New("lookup failed here")
	rt.lookup = func(host string) ([]netip.Addr, error) {
		if host == "fails.invalid" {
			return nil, lookupErr
		}
		return nil, nil
	}
	if addrs, err := rt.resolve("empty.invalid"); err == nil || err.Error() != "empty.invalid: no address" || len(addrs) != 0 {
		t.Errorf("resolve of a name with no address: %v, %v; want \"empty.invalid: no address\"", addrs, err)
	}
	if _, err := rt.resolve("fails.invalid"); err != lookupErr {
		t.Errorf("resolve with a failing lookup: %v, want the lookup's own error", err)
	}
	if addrs, err := rt.resolve("::ffff:10.0.0.5"); err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("resolve of an address: %v, %v; want itself, unmapped", addrs, err)
	}
}

// TestDescribeAddrs: a realm given as an address is described as such; a name, or an address that
// is not the one address found, by what it resolved to (realmaddr.go:39, the three comparisons).
func TestDescribeAddrs(t *testing.T) {
	a := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	for _, c := range []struct {
		host  string
		addrs []netip.Addr
		want  string
	}{
		{"10.0.0.5", a("10.0.0.5"), "a loopback or private address"},
		{"::ffff:10.0.0.5", a("10.0.0.5"), "a loopback or private address"},
		{"auth.internal", a("10.0.0.5"), "a name resolving to 10.0.0.5"},
		{"10.0.0.5", a("10.0.0.6"), "a name resolving to 10.0.0.6"},
		{"10.0.0.5", a("10.0.0.5", "10.0.0.6"), "a name resolving to 10.0.0.5, 10.0.0.6"},
	} {
		if got := describeAddrs(c.host, c.addrs); got != c.want {
			t.Errorf("describeAddrs(%q, %v) = %q, want %q", c.host, c.addrs, got, c.want)
		}
	}
}

// fakeRealm is a forward transport standing for a token service: it answers each request with the
// next status and Location of its script (200 once the script is done) and records the requests.
type fakeRealm struct {
	mu     sync.Mutex
	script []fakeAnswer
	seen   []*http.Request
}

type fakeAnswer struct {
	status   int
	location string
}

func (f *fakeRealm) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, r)
	ans := fakeAnswer{status: http.StatusOK}
	if n := len(f.seen); n <= len(f.script) {
		ans = f.script[n-1]
	}
	h := http.Header{}
	if ans.location != "" {
		h.Set("Location", ans.location)
	}
	return &http.Response{StatusCode: ans.status, Header: h, Body: io.NopCloser(strings.NewReader("answer")), Request: r}, nil
}

func (f *fakeRealm) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// forwardMarker sends a marker request for realm, signed by rt for registry reg.example, as oras-go
// would after the challenge was rewritten.
func forwardMarker(t *testing.T, rt *RealmTransport, method, realm string) (*http.Response, error) {
	t.Helper()
	q := url.Values{"realm": {realm}, "sig": {rt.sign("reg.example", realm)}}
	req, err := http.NewRequestWithContext(t.Context(), method, "https://reg.example"+RealmMarkerPath+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		resp.Body.Close()
	}
	return resp, err
}

func fakeRealmTransport(t *testing.T, f *fakeRealm, named ...string) *RealmTransport {
	t.Helper()
	rt, err := NewRealmTransport(http.DefaultTransport, f, named)
	if err != nil {
		t.Fatal(err)
	}
	rt.lookup = fakeLookupWith(map[string]string{"meta.invalid": "169.254.169.254", "auth.invalid": "10.0.0.5"})
	return rt
}

// TestForwardToRealmChecksAgain: a signed marker is still refused, before anything is sent, when its
// realm now resolves to a metadata address (realmforward.go:80, err == nil) or is not named with
// --token-realm (realmforward.go:83, err == nil).
func TestForwardToRealmChecksAgain(t *testing.T) {
	for _, c := range []struct {
		name, realm, named, want string
	}{
		{"metadata", "http://meta.invalid/token", "meta.invalid", "never sent credentials, even with --token-realm"},
		{"not named", "http://auth.invalid/token", "other.invalid", "is not named with --token-realm"},
	} {
		f := &fakeRealm{}
		rt := fakeRealmTransport(t, f, c.named)
		if _, err := forwardMarker(t, rt, http.MethodGet, c.realm); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
		if n := f.requests(); n != 0 {
			t.Errorf("%s: %d requests reached the realm, want none", c.name, n)
		}
	}
	// The same, named and private: forwarded.
	f := &fakeRealm{}
	rt := fakeRealmTransport(t, f, "auth.invalid")
	if resp, err := forwardMarker(t, rt, http.MethodGet, "http://auth.invalid/token"); err != nil || resp.StatusCode != http.StatusOK || f.requests() != 1 {
		t.Errorf("named realm: %v, %d requests; want forwarded once", err, f.requests())
	}
}

// TestRealmRedirectStatuses: 300 to 399 with a Location are redirects, followed on the same origin;
// 299 and 400 are answers (realmforward.go:106, < 300 and > 399).
func TestRealmRedirectStatuses(t *testing.T) {
	for _, c := range []struct {
		status   int
		followed bool
	}{{299, false}, {300, true}, {399, true}, {400, false}} {
		f := &fakeRealm{script: []fakeAnswer{{c.status, "/final"}}}
		rt := fakeRealmTransport(t, f, "auth.invalid")
		resp, err := forwardMarker(t, rt, http.MethodGet, "http://auth.invalid/token")
		if err != nil {
			t.Fatalf("%d: %v", c.status, err)
		}
		want, wantReqs := c.status, 1
		if c.followed {
			want, wantReqs = http.StatusOK, 2
		}
		if resp.StatusCode != want || f.requests() != wantReqs {
			t.Errorf("%d with a Location: got %d after %d requests, want %d after %d", c.status, resp.StatusCode, f.requests(), want, wantReqs)
		}
		if c.followed && len(f.seen) == 2 && f.seen[1].URL.String() != "http://auth.invalid/final" {
			t.Errorf("%d: followed to %s, want http://auth.invalid/final", c.status, f.seen[1].URL)
		}
	}
}

// TestRealmRedirectMethods: a same-origin redirect is followed for GET and HEAD, never for a request
// with a body (realmforward.go:116, the method test).
func TestRealmRedirectMethods(t *testing.T) {
	for _, c := range []struct {
		method   string
		followed bool
	}{{http.MethodGet, true}, {http.MethodHead, true}, {http.MethodPost, false}} {
		f := &fakeRealm{script: []fakeAnswer{{http.StatusFound, "/final"}}}
		rt := fakeRealmTransport(t, f, "auth.invalid")
		resp, err := forwardMarker(t, rt, c.method, "http://auth.invalid/token")
		if c.followed {
			if err != nil || resp.StatusCode != http.StatusOK || f.requests() != 2 {
				t.Errorf("%s: %v after %d requests, want followed to a 200", c.method, err, f.requests())
			}
		} else if err == nil || !strings.Contains(err.Error(), "with a request body; not followed") || f.requests() != 1 {
			t.Errorf("%s: %v after %d requests, want the redirect not followed", c.method, err, f.requests())
		}
	}
}

// TestRealmRedirectLimit: five redirects are followed, the sixth is not (realmforward.go:100, hop++,
// and :120, hop >= maxRealmRedirects).
func TestRealmRedirectLimit(t *testing.T) {
	loop := func(n int) []fakeAnswer {
		s := make([]fakeAnswer, n)
		for i := range s {
			s[i] = fakeAnswer{http.StatusFound, "/token"}
		}
		return s
	}
	f := &fakeRealm{script: loop(maxRealmRedirects)}
	rt := fakeRealmTransport(t, f, "auth.invalid")
	if resp, err := forwardMarker(t, rt, http.MethodGet, "http://auth.invalid/token"); err != nil || resp.StatusCode != http.StatusOK || f.requests() != 6 {
		t.Errorf("5 redirects: %v after %d requests, want a 200 after 6", err, f.requests())
	}
	f = &fakeRealm{script: loop(50)}
	rt = fakeRealmTransport(t, f, "auth.invalid")
	if _, err := forwardMarker(t, rt, http.MethodGet, "http://auth.invalid/token"); err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") || f.requests() != 6 {
		t.Errorf("endless redirects: %v after %d requests, want stopped after 5 redirects (6 requests)", err, f.requests())
	}
}
