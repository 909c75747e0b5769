package registry

// Tests that pin behaviour gremlins found unasserted (issue 20, docs/mutation.md): each names the
// mutant it kills.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
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

// newTestRegistries is New(opts) with an empty docker config.
func newTestRegistries(t *testing.T, opts Options) *Registries {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestNewResponseHeaderTimeout: a registry that accepts a request and never answers is given up on
// after two minutes, on the registry and on the forwarded token requests (registry.go:66,
// 2 * time.Minute; as 2 / time.Minute, 0, it would wait forever). Two minutes is too long to wait
// for here: the value is read from the transports New built.
func TestNewResponseHeaderTimeout(t *testing.T) {
	r := newTestRegistries(t, Options{})
	for name, rt := range map[string]http.RoundTripper{"registry": r.realms.next, "token realm": r.realms.forward} {
		tr, ok := rt.(retryTransport).next.(*http.Transport)
		if !ok {
			t.Fatalf("%s: transport %T under the retries, want *http.Transport (no stall guard without StallTimeout)", name, rt.(retryTransport).next)
		}
		if tr.ResponseHeaderTimeout != 2*time.Minute {
			t.Errorf("%s: ResponseHeaderTimeout %v, want 2m0s", name, tr.ResponseHeaderTimeout)
		}
	}
}

// TestNewUserAgent: requests carry the User-Agent given, "airlock" when none is (registry.go:104).
func TestNewUserAgent(t *testing.T) {
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("User-Agent")
		mu.Unlock()
	}))
	defer srv.Close()
	for _, c := range []struct{ ua, want string }{{"", "airlock"}, {"airlock-test/1.2", "airlock-test/1.2"}} {
		r := newTestRegistries(t, Options{UserAgent: c.ua})
		if err := fetchThroughAirlock(t, r, srv.URL); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if got != c.want {
			t.Errorf("UserAgent %q: the registry saw %q, want %q", c.ua, got, c.want)
		}
		mu.Unlock()
	}
}

// TestMarkNoCredential: the flag is set when credentials were found without a secret oras-go can use
// (no username or no password, and no token), never for none, a full pair, a token, or an error
// (registry.go:204).
func TestMarkNoCredential(t *testing.T) {
	for _, c := range []struct {
		name string
		cred auth.Credential
		err  error
		want bool
	}{
		{"none", auth.EmptyCredential, nil, false},
		{"user and password", auth.Credential{Username: "alice", Password: "s3cret"}, nil, false},
		{"no password", auth.Credential{Username: "alice"}, nil, true},
		{"no username", auth.Credential{Password: "s3cret"}, nil, true},
		{"refresh token", auth.Credential{Username: "alice", RefreshToken: "t"}, nil, false},
		{"access token", auth.Credential{AccessToken: "t"}, nil, false},
		{"lookup failed", auth.Credential{Username: "alice"}, errors.New("helper failed"), false},
	} {
		var flag atomic.Bool
		ctx := context.WithValue(t.Context(), noCredentialKey{}, &flag)
		cred, err := markNoCredential(func(context.Context, string) (auth.Credential, error) { return c.cred, c.err })(ctx, "reg.example")
		if cred != c.cred || err != c.err {
			t.Errorf("%s: returned %+v, %v; want the lookup's own %+v, %v", c.name, cred, err, c.cred, c.err)
		}
		if flag.Load() != c.want {
			t.Errorf("%s: unusable flag %v, want %v", c.name, flag.Load(), c.want)
		}
	}
}

// TestPlainToTLS: a 400 whose body says plain HTTP reached a TLS port becomes the --tls hint only for
// a plain-HTTP request and only for a 400 (registry.go:226).
func TestPlainToTLS(t *testing.T) {
	const said = "Client sent an HTTP request to an HTTPS server.\n"
	for _, c := range []struct {
		scheme string
		status int
		hint   bool
	}{{"http", http.StatusBadRequest, true}, {"https", http.StatusBadRequest, false}, {"http", http.StatusNotFound, false}} {
		req := httptest.NewRequest(http.MethodGet, c.scheme+"://reg.example:5000/v2/", nil)
		resp := &http.Response{StatusCode: c.status, Body: io.NopCloser(strings.NewReader(said))}
		got, err := plainToTLS(req, resp)
		if c.hint {
			if err == nil || !strings.Contains(err.Error(), "the registry serves TLS, not plain HTTP; reach it with --tls reg.example:5000") {
				t.Errorf("%s %d: %v, want the --tls hint", c.scheme, c.status, err)
			}
			continue
		}
		if err != nil || got == nil || got.StatusCode != c.status {
			t.Errorf("%s %d: %v, %v; want the answer as it came", c.scheme, c.status, got, err)
			continue
		}
		if b, _ := io.ReadAll(got.Body); string(b) != said {
			t.Errorf("%s %d: body %q, want %q", c.scheme, c.status, b, said)
		}
	}
}

// TestRetryOrDefault: no attempts (0, or fewer) means the defaults; one attempt is kept as given
// (retry.go:43, Attempts <= 0).
func TestRetryOrDefault(t *testing.T) {
	one := Retry{Attempts: 1, Base: time.Millisecond, Max: 2 * time.Millisecond}
	for _, c := range []struct{ in, want Retry }{
		{Retry{}, DefaultRetry},
		{Retry{Attempts: 0, Base: time.Millisecond}, DefaultRetry},
		{Retry{Attempts: -1}, DefaultRetry},
		{one, one},
	} {
		if got := c.in.OrDefault(); got != c.want {
			t.Errorf("%+v.OrDefault() = %+v, want %+v", c.in, got, c.want)
		}
	}
}

// TestRetryAfterBounds: a Retry-After of 1s up to MaxRetryAfter (60s) is kept; 0, negative and past
// the bound are not, and leave the wait asked before (retry.go:75, d > 0 and d <= MaxRetryAfter).
func TestRetryAfterBounds(t *testing.T) {
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"1", time.Second},
		{"60", MaxRetryAfter},
		{"61", 5 * time.Second},
		{"0", 5 * time.Second},
		{"-1", 5 * time.Second},
	} {
		var h retryAfter
		h.d.Store(int64(5 * time.Second))
		h.note(&http.Response{Header: http.Header{"Retry-After": {c.header}}})
		if got := time.Duration(h.d.Load()); got != c.want {
			t.Errorf("Retry-After: %s after 5s was asked: wait %v, want %v", c.header, got, c.want)
		}
	}
}

// retryGaps runs r.Do with an operation that always fails retryably and returns the time between
// its calls and Do's error. ctx bounds a wait that has gone wrong.
func retryGaps(t *testing.T, r Retry) ([]time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var calls []time.Time
	err := r.Do(ctx, "op", func(context.Context) error {
		calls = append(calls, time.Now())
		return ErrStalled
	})
	var gaps []time.Duration
	for i := 1; i < len(calls); i++ {
		gaps = append(gaps, calls[i].Sub(calls[i-1]))
	}
	return gaps, err
}

// TestRetryBackoff: the wait before attempt n+1 is Base doubled n-1 times, capped at Max, Max for a
// Base of 0, with full jitter in its upper half: between half of it and all of it (retry.go:97,
// Base << (attempt - 1); :98, the cap; :101, wait/2 + jitter).
func TestRetryBackoff(t *testing.T) {
	const base = 50 * time.Millisecond
	gaps, err := retryGaps(t, Retry{Attempts: 3, Base: base, Max: time.Second})
	if err == nil || err.Error() != "op: gave up after 3 attempts: transfer stalled" {
		t.Fatalf("Do: %v, want gave up after 3 attempts", err)
	}
	// Waits of 50ms then 100ms, each at least half of that; together under 280ms (the doubling
	// starting at 4*Base, or waits at Max, would take 300ms or more).
	if len(gaps) != 2 || gaps[0] < base/2 || gaps[1] < base || gaps[0]+gaps[1] >= 280*time.Millisecond {
		t.Errorf("waits %v; want [25ms..50ms] then [50ms..100ms]", gaps)
	}
	gaps, err = retryGaps(t, Retry{Attempts: 2, Base: 0, Max: 40 * time.Millisecond})
	if err == nil || err.Error() != "op: gave up after 2 attempts: transfer stalled" || len(gaps) != 1 || gaps[0] < 20*time.Millisecond {
		t.Errorf("Base 0: waited %v, %v; want Max's [20ms..40ms], then gave up after 2 attempts", gaps, err)
	}
}

// TestRetryJitterWithinTheWait: every wait is at most the backoff itself (jitter draws from its
// upper half only), never past it: eight waits of a 60ms backoff, each at least 30ms, and at most one
// of them past 90ms (a timer that fired late on a busy machine). A jitter drawn from twice the wait
// (retry.go:101, wait/2 in rand.N: 30ms..150ms) goes past 90ms in half of the waits.
func TestRetryJitterWithinTheWait(t *testing.T) {
	const w = 60 * time.Millisecond
	gaps, err := retryGaps(t, Retry{Attempts: 9, Base: w, Max: w})
	if err == nil || err.Error() != "op: gave up after 9 attempts: transfer stalled" || len(gaps) != 8 {
		t.Fatalf("Do: %d waits, %v; want 8, then gave up after 9 attempts", len(gaps), err)
	}
	late := 0
	for _, g := range gaps {
		if g < w/2 {
			t.Errorf("waits %v: one under 30ms", gaps)
		}
		if g > w+w/2 {
			late++
		}
	}
	if late > 1 {
		t.Errorf("waits %v: %d past 90ms, want each 30ms..60ms (one may come late)", gaps, late)
	}
}

// recordingNext is a transport that answers with the statuses given in turn (the last one again
// when they run out) and records each body it was sent.
type recordingNext struct {
	statuses []int
	bodies   []string
	first    io.ReadCloser // the body of the first request sent
}

func (n *recordingNext) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(n.bodies) == 0 {
		n.first = r.Body
	}
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	n.bodies = append(n.bodies, string(b))
	status := n.statuses[min(len(n.bodies), len(n.statuses))-1]
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("answer")), Request: r}, nil
}

// TestRetryTransportBodies: outside Retry.Do, a request whose body can be made again (GetBody) is
// sent again whole after a retryable answer, its first send with its own body; a streamed one (no
// GetBody) is sent once; the last retryable answer is returned as it came (retry.go:122, the
// streamed-body test, req.Body != http.NoBody; :134, sent++ and sent > 1; :146, sent < r.Attempts).
func TestRetryTransportBodies(t *testing.T) {
	fast := Retry{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}
	newReq := func(withGetBody bool) (*http.Request, *int) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://reg.example/v2/team/app/blobs/uploads/1", strings.NewReader("blob"))
		if err != nil {
			t.Fatal(err)
		}
		gets := new(int)
		if withGetBody {
			req.GetBody = func() (io.ReadCloser, error) {
				*gets++
				return io.NopCloser(strings.NewReader("blob")), nil
			}
		} else {
			req.GetBody = nil
		}
		return req, gets
	}

	next := &recordingNext{statuses: []int{http.StatusServiceUnavailable, http.StatusCreated}}
	req, gets := newReq(true)
	resp, err := retryTransport{next, fast}.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("503 then 201: %v, %v; want the 201", resp, err)
	}
	if len(next.bodies) != 2 || next.bodies[0] != "blob" || next.bodies[1] != "blob" || *gets != 1 || next.first != req.Body {
		t.Errorf("503 then 201: sent %q, GetBody called %d times, first body the request's own: %v; want \"blob\" twice, GetBody once, for the second",
			next.bodies, *gets, next.first == req.Body)
	}

	next = &recordingNext{statuses: []int{http.StatusServiceUnavailable}}
	req, _ = newReq(true)
	resp, err = retryTransport{next, fast}.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || len(next.bodies) != 3 {
		t.Errorf("503 each time: %v, %v after %d sends; want the third 503 as it came", resp, err, len(next.bodies))
	} else if b, _ := io.ReadAll(resp.Body); string(b) != "answer" {
		t.Errorf("503 each time: body %q, want the answer's own", b)
	}

	next = &recordingNext{statuses: []int{http.StatusServiceUnavailable, http.StatusCreated}}
	req, _ = newReq(false)
	resp, err = retryTransport{next, fast}.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || len(next.bodies) != 1 || next.bodies[0] != "blob" {
		t.Errorf("streamed body, 503: %v, %v, sent %q; want the 503, sent once", resp, err, next.bodies)
	}
}

// TestRetryableStatus: 500 and up, 429 and 408 may differ when asked again; 499 and other 4xx do not
// (retry.go:160, code >= 500).
func TestRetryableStatus(t *testing.T) {
	for code, want := range map[int]bool{499: false, 500: true, 501: true, 503: true, 429: true, 408: true, 404: false, 428: false, 200: false} {
		if got := retryableStatus(code); got != want {
			t.Errorf("retryableStatus(%d) = %v, want %v", code, got, want)
		}
		err := &errcode.ErrorResponse{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "reg.example"}, StatusCode: code}
		if got := Retryable(err); got != want {
			t.Errorf("Retryable(a %d answer) = %v, want %v", code, got, want)
		}
	}
}

// slowBody is an answer's body that, every 30ms, gives one byte (data) or none, ten times, then
// io.EOF; it fails with the request's context once that is cancelled, as net/http's bodies do.
type slowBody struct {
	ctx   context.Context
	data  bool
	reads int
}

func (b *slowBody) Read(p []byte) (int, error) {
	time.Sleep(30 * time.Millisecond)
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.reads++; b.reads > 10 {
		return 0, io.EOF
	}
	if b.data {
		p[0] = 'x'
		return 1, nil
	}
	return 0, nil
}

func (b *slowBody) Close() error { return nil }

// TestStallCountsBytesNotReads: an answer that gives a byte every 30ms is not cut by a 150ms stall
// guard; one whose reads return every 30ms with no byte is (stall.go:114, n > 0).
func TestStallCountsBytesNotReads(t *testing.T) {
	for _, data := range []bool{true, false} {
		next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusOK, Body: &slowBody{ctx: r.Context(), data: data}, Request: r}, nil
		})
		req := httptest.NewRequest(http.MethodGet, "https://reg.example/v2/team/app/blobs/sha256:1", nil).WithContext(t.Context())
		resp, err := newStallTransport(next, 150*time.Millisecond).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if data && (err != nil || string(b) != "xxxxxxxxxx") {
			t.Errorf("a byte every 30ms: read %q, %v; want all ten bytes", b, err)
		}
		if !data && (!errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "no byte for 150ms (--stall-timeout)")) {
			t.Errorf("reads with no byte every 30ms: %v; want cut after 150ms with no byte", err)
		}
	}
}

// TestStallWatchesTheResentBody: the body net/http gets again from GetBody (to resend a request on a
// connection lost early) is watched as the first one is (stall.go:41, getBody != nil).
func TestStallWatchesTheResentBody(t *testing.T) {
	var resent io.ReadCloser
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.GetBody == nil {
			return nil, errors.New("no GetBody")
		}
		var err error
		resent, err = r.GetBody()
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: r}, nil
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "https://reg.example/v2/team/app/blobs/uploads/1", strings.NewReader("blob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newStallTransport(next, time.Minute).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := resent.(*watchedBody); !ok {
		t.Errorf("the body GetBody gave is a %T, want it watched (*watchedBody)", resent)
	} else if b, _ := io.ReadAll(resent); string(b) != "blob" {
		t.Errorf("the body GetBody gave reads %q, want \"blob\"", b)
	}
}

// TestPutToSessionScheme: an upload session of an https registry is used at an https Location and
// refused at an http one, before the blob is opened (upload.go:86, loc.Scheme != "https").
func TestPutToSessionScheme(t *testing.T) {
	for _, c := range []struct {
		location string
		ok       bool
	}{{"https://reg.example/v2/team/app/blobs/uploads/1", true}, {"http://reg.example:443/v2/team/app/blobs/uploads/1", false}} {
		var puts []string
		repo := &remote.Repository{Client: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			puts = append(puts, r.Method+" "+r.URL.String())
			return &http.Response{StatusCode: http.StatusCreated, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}).asClient()}
		post := httptest.NewRequest(http.MethodPost, "https://reg.example/v2/team/app/blobs/uploads/", nil)
		resp := &http.Response{StatusCode: http.StatusAccepted, Header: http.Header{"Location": {c.location}}, Request: post}
		opened := 0
		open := func() (io.ReadCloser, error) { opened++; return io.NopCloser(strings.NewReader("blob")), nil }
		desc := ocispec.Descriptor{Digest: digest.FromString("blob"), Size: 4}
		err := putToSession(t.Context(), repo, resp, desc, open)
		if c.ok {
			if err != nil || opened != 1 || len(puts) != 1 || !strings.HasPrefix(puts[0], "PUT "+c.location+"?digest=sha256%3A") {
				t.Errorf("%s: %v, opened %d, sent %v; want one PUT there", c.location, err, opened, puts)
			}
		} else if err == nil || !strings.Contains(err.Error(), "downgrades from https") || opened != 0 || len(puts) != 0 {
			t.Errorf("%s: %v, opened %d, sent %v; want refused as a downgrade, nothing opened or sent", c.location, err, opened, puts)
		}
	}
}

// clientFunc is a remote.Client made of a round trip function.
type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func (f roundTripFunc) asClient() remote.Client { return clientFunc(f) }

// TestPutToSessionAnswer: the PUT carries the POST's Authorization, and none when the POST had none;
// its answer decides: 201 is done, a 500 or a 201 naming another digest is an error saying so
// (upload.go:103, a != ""; :107, err != nil).
func TestPutToSessionAnswer(t *testing.T) {
	desc := ocispec.Descriptor{Digest: digest.FromString("blob"), Size: 4}
	for _, c := range []struct {
		name, auth string
		status     int
		stored     string
		want       string // "" for no error
	}{
		{"created, with the POST's token", "Bearer tok", http.StatusCreated, desc.Digest.String(), ""},
		{"created, no token", "", http.StatusCreated, "", ""},
		{"server error", "", http.StatusInternalServerError, "", "500"},
		{"another digest stored", "", http.StatusCreated, digest.FromString("other").String(), "the registry stored " + digest.FromString("other").String()},
	} {
		var auths [][]string
		repo := &remote.Repository{Client: clientFunc(func(r *http.Request) (*http.Response, error) {
			auths = append(auths, r.Header.Values("Authorization"))
			h := http.Header{}
			if c.stored != "" {
				h.Set("Docker-Content-Digest", c.stored)
			}
			return &http.Response{StatusCode: c.status, Status: http.StatusText(c.status), Header: h, Body: http.NoBody, Request: r}, nil
		})}
		post := httptest.NewRequest(http.MethodPost, "https://reg.example/v2/team/app/blobs/uploads/", nil)
		if c.auth != "" {
			post.Header.Set("Authorization", c.auth)
		}
		resp := &http.Response{StatusCode: http.StatusAccepted, Header: http.Header{"Location": {"/v2/team/app/blobs/uploads/1"}}, Request: post}
		err := putToSession(t.Context(), repo, resp, desc, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("blob")), nil })
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		wantAuth := []string(nil)
		if c.auth != "" {
			wantAuth = []string{c.auth}
		}
		if len(auths) != 1 || strings.Join(auths[0], "|") != strings.Join(wantAuth, "|") || len(auths[0]) != len(wantAuth) {
			t.Errorf("%s: PUT Authorization %q, want %q", c.name, auths, wantAuth)
		}
	}
}

// TestErrorResponseKeepsTheRegistrysErrors: the registry's own errors, from the JSON body, are in
// the error (upload.go:147, Decode == nil).
func TestErrorResponseKeepsTheRegistrysErrors(t *testing.T) {
	req := httptest.NewRequest(http.MethodPut, "https://reg.example/v2/team/app/blobs/uploads/1", nil)
	resp := &http.Response{StatusCode: http.StatusForbidden, Request: req,
		Body: io.NopCloser(strings.NewReader(`{"errors":[{"code":"DENIED","message":"pushes are closed"}]}`))}
	var e *errcode.ErrorResponse
	err := errorResponse(resp)
	if !errors.As(err, &e) || e.StatusCode != http.StatusForbidden || len(e.Errors) != 1 || e.Errors[0].Code != "DENIED" ||
		!strings.Contains(err.Error(), "pushes are closed") {
		t.Errorf("errorResponse: %v, want the 403 with the registry's DENIED: pushes are closed", err)
	}
}

// TestMonolithicUploads: a registry that takes the empty blob on the POST (201) does monolithic
// uploads, asked once per host; one that fails the POST is an error saying what was asked, and
// is asked again next time (upload.go:167, err != nil).
func TestMonolithicUploads(t *testing.T) {
	for _, c := range []struct {
		status int
		want   bool
		errMsg string
	}{{http.StatusCreated, true, ""}, {http.StatusInternalServerError, false, "ask reg.example whether it takes a blob in one request"}} {
		posts := 0
		repo, err := remote.NewRepository("reg.example/team/app")
		if err != nil {
			t.Fatal(err)
		}
		repo.Client = clientFunc(func(r *http.Request) (*http.Response, error) {
			posts++
			return &http.Response{StatusCode: c.status, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		r := &Registries{monolithic: map[string]bool{}}
		for range 2 {
			yes, err := r.MonolithicUploads(t.Context(), repo)
			if yes != c.want || (c.errMsg == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.errMsg) {
				t.Errorf("%d: %v, %v; want %v, %q", c.status, yes, err, c.want, c.errMsg)
			}
		}
		if wantPosts := map[bool]int{true: 1, false: 2}[c.errMsg == ""]; posts != wantPosts {
			t.Errorf("%d: asked %d times in two calls, want %d", c.status, posts, wantPosts)
		}
	}
}

// TestParseChallengeSchemeAlone: a challenge of a scheme and nothing else ("Basic") parses, with no
// parameters; an empty or blank one does not (challenge.go:27, s != "").
func TestParseChallengeSchemeAlone(t *testing.T) {
	if scheme, params, ok := parseChallenge(" Basic "); !ok || scheme != "Basic" || params != nil {
		t.Errorf(`parseChallenge(" Basic ") = %q, %v, %v; want "Basic", no parameters, ok`, scheme, params, ok)
	}
	for _, c := range []string{"", " \t "} {
		if _, _, ok := parseChallenge(c); ok {
			t.Errorf("parseChallenge(%q) ok, want not", c)
		}
	}
}

// TestCheckChallengeWithoutRealm: a Bearer challenge without a realm has no realm to check: its
// other parameters are passed on as they came, even one that reads as a URL to a private host
// (realm.go:205, realm starts at -1, "none"; from 1, the second parameter is taken as the realm).
func TestCheckChallengeWithoutRealm(t *testing.T) {
	rt := newRealmTransport(t)
	reg := &url.URL{Scheme: "https", Host: "reg.example"}
	c := `Bearer service="reg",scope="https://10.9.9.9/token"`
	got, err := rt.checkChallenge(reg, c)
	if err != nil || got != c {
		t.Errorf("checkChallenge(%q) = %q, %v; want it unchanged (no realm: nothing to check)", c, got, err)
	}
}
