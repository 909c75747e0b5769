package mirror

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
)

// RealmMarkerPath is the path, on a registry's own host, that stands for a bearer token realm on a
// private address. See RealmTransport.
const RealmMarkerPath = "/.airlock/token-realm"

// maxRealmRedirects bounds the same-origin redirects followed for a forwarded token request.
const maxRealmRedirects = 5

// cgnat is the shared address space of carrier-grade NAT (RFC 6598); cloud metadata services live there.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// RealmTransport lets a registry that the user named hand out tokens from a token service on another
// private or loopback host (an in-cluster auth service, a registry on 127.0.0.1 with its token service
// on 127.0.0.2), which oras-go refuses since v2.6.1 to keep credentials away from internal addresses.
//
// It sits under oras-go's auth.Client, so it sees the registry's 401 responses. When such a response
// from a named host carries `WWW-Authenticate: Bearer realm="R"` and R is eligible (see eligibleRealm),
// the realm is rewritten to a marker URL on the registry's own host,
// `<scheme>://<registry>/.airlock/token-realm?realm=<R>`, which oras-go accepts as same-host. When oras-go
// then requests the marker URL, the request (method, query, headers, body) goes to R instead, and R's
// answer comes back: oras-go's own token handling and cache stay in charge. A marker request for a realm
// that the registry never announced is refused, and R's redirects are followed only on R's own origin.
type RealmTransport struct {
	next    http.RoundTripper // the registry traffic
	forward http.RoundTripper // requests to rewritten realms
	lookup  func(host string) ([]netip.Addr, error)

	mu        sync.Mutex
	named     map[string]bool            // host[:port] as in request URLs, lower case
	announced map[string]map[string]bool // registry host -> realms it announced and we rewrote
}

// NewRealmTransport returns a RealmTransport that sends registry requests through next and forwarded
// token requests through forward (nil means next). No host is named until Name is called.
func NewRealmTransport(next, forward http.RoundTripper) *RealmTransport {
	if forward == nil {
		forward = next
	}
	return &RealmTransport{
		next:      next,
		forward:   forward,
		lookup:    lookupAddrs,
		named:     map[string]bool{},
		announced: map[string]map[string]bool{},
	}
}

// Name marks host (host or host:port, as it appears in request URLs) as a registry the user named:
// only its challenges are rewritten.
func (t *RealmTransport) Name(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.named[strings.ToLower(host)] = true
}

func (t *RealmTransport) isNamed(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.named[strings.ToLower(host)]
}

func (t *RealmTransport) announce(host, realm string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	host = strings.ToLower(host)
	if t.announced[host] == nil {
		t.announced[host] = map[string]bool{}
	}
	t.announced[host][realm] = true
}

func (t *RealmTransport) wasAnnounced(host, realm string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.announced[strings.ToLower(host)][realm]
}

// RoundTrip implements http.RoundTripper.
func (t *RealmTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == RealmMarkerPath {
		return t.forwardToRealm(req)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !t.isNamed(req.URL.Host) {
		return resp, err
	}
	values := resp.Header.Values("Www-Authenticate")
	if len(values) == 0 {
		return resp, nil
	}
	rewritten := make([]string, len(values))
	changed := false
	for i, v := range values {
		rewritten[i] = v
		if nv, ok := t.rewriteChallenge(req.URL, v); ok {
			rewritten[i], changed = nv, true
		}
	}
	if changed {
		resp.Header = resp.Header.Clone()
		resp.Header.Del("Www-Authenticate")
		for _, v := range rewritten {
			resp.Header.Add("Www-Authenticate", v)
		}
	}
	return resp, nil
}

// rewriteChallenge returns the challenge with its realm replaced by the marker URL, when the challenge
// is a Bearer challenge whose realm is eligible.
func (t *RealmTransport) rewriteChallenge(registry *url.URL, challenge string) (string, bool) {
	scheme, params, ok := parseChallenge(challenge)
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	i := slicesIndexParam(params, "realm")
	if i < 0 || !t.eligibleRealm(registry, params[i].value) {
		return "", false
	}
	realm := params[i].value
	t.announce(registry.Host, realm)
	marker := url.URL{Scheme: registry.Scheme, Host: registry.Host, Path: RealmMarkerPath,
		RawQuery: url.Values{"realm": {realm}}.Encode()}
	params[i].value = marker.String()
	return formatChallenge(scheme, params), true
}

// eligibleRealm reports whether a realm announced by registry is rewritten: it is on another host than
// the registry; it uses https, or http only when the registry itself is plain http; it carries no user
// info; and its host is, or resolves only to, addresses that oras-go refuses but that are safe to reach
// for a registry the user named: loopback or private. Any link-local, unspecified, multicast or CGNAT
// address (metadata services live there) makes it ineligible, and so does a failed lookup. A realm on
// public addresses only is left alone: oras-go accepts it as is.
func (t *RealmTransport) eligibleRealm(registry *url.URL, realm string) bool {
	u, err := url.Parse(realm)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if registry.Scheme != "http" {
			return false
		}
	default:
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, registry.Hostname()) {
		return false
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = t.lookup(host); err != nil || len(addrs) == 0 {
		return false
	}
	internal := false
	for _, a := range addrs {
		a = a.Unmap()
		if forbiddenRealmAddr(a) {
			return false
		}
		if a.IsLoopback() || a.IsPrivate() {
			internal = true
		}
	}
	return internal
}

// forbiddenRealmAddr reports whether a token request must never go to a: link-local (cloud metadata at
// 169.254.169.254, fe80::/10), unspecified, multicast or CGNAT (metadata at 100.100.100.200).
func forbiddenRealmAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a)
}

func lookupAddrs(host string) ([]netip.Addr, error) {
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	return addrs, nil
}

// RealmDialControl is a net.Dialer Control function for the transport of forwarded token requests: it
// refuses to connect to a forbidden address even when a name resolved differently at dial time than when
// the realm was checked (DNS rebinding).
func RealmDialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("token realm address %q: %w", address, err)
	}
	if forbiddenRealmAddr(a) {
		return fmt.Errorf("token realm address %s is link-local, unspecified, multicast or carrier-grade NAT; refused", a)
	}
	return nil
}

// forwardToRealm sends a marker request to the realm it stands for and returns the realm's answer.
func (t *RealmTransport) forwardToRealm(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	realm := q.Get("realm")
	q.Del("realm")
	if realm == "" || !t.wasAnnounced(req.URL.Host, realm) {
		closeBody(req)
		return nil, fmt.Errorf("token realm %q was not announced by registry %s; refused", realm, req.URL.Host)
	}
	target, err := url.Parse(realm)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("token realm %q: %w", realm, err)
	}
	if extra := q.Encode(); extra != "" {
		if target.RawQuery != "" {
			target.RawQuery += "&"
		}
		target.RawQuery += extra
	}
	out := req.Clone(req.Context())
	out.URL, out.Host, out.RequestURI = target, "", ""
	for hop := 0; ; hop++ {
		resp, err := t.forward.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			resp.Request = req
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		next, err := target.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("token realm %s redirected to %q: %w", redact(target), loc, err)
		}
		if !sameOrigin(target, next) || (out.Method != http.MethodGet && out.Method != http.MethodHead) {
			return nil, fmt.Errorf("token realm %s redirected to %s, another origin or with a request body; not followed",
				redact(target), redact(next))
		}
		if hop >= maxRealmRedirects {
			return nil, fmt.Errorf("token realm %s: stopped after %d redirects", redact(target), maxRealmRedirects)
		}
		out = out.Clone(req.Context())
		out.URL, target = next, next
	}
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// redact drops the query (scopes and service name, nothing secret, but long) from u for messages.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.User = "", nil
	return c.String()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// challengeParam is one auth-param of a WWW-Authenticate challenge, in the order it came.
type challengeParam struct{ key, value string }

func slicesIndexParam(params []challengeParam, key string) int {
	for i, p := range params {
		if strings.EqualFold(p.key, key) {
			return i
		}
	}
	return -1
}

var errChallenge = errors.New("malformed challenge")

// parseChallenge parses `scheme k=v, k="quoted \"v\""` (RFC 7235 section 2.1, one challenge).
func parseChallenge(s string) (scheme string, params []challengeParam, ok bool) {
	s = strings.TrimSpace(s)
	sp := strings.IndexAny(s, " \t")
	if sp < 0 {
		return s, nil, s != ""
	}
	scheme, rest := s[:sp], s[sp:]
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return scheme, params, true
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", nil, false
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var value string
		var err error
		value, rest, err = challengeValue(rest)
		if err != nil || key == "" || strings.ContainsAny(key, " \t\",") {
			return "", nil, false
		}
		params = append(params, challengeParam{key, value})
	}
}

func challengeValue(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s, ',')
		if end < 0 {
			end = len(s)
		}
		return strings.TrimSpace(s[:end]), s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", "", errChallenge
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errChallenge
}

func formatChallenge(scheme string, params []challengeParam) string {
	var b strings.Builder
	b.WriteString(scheme)
	for i, p := range params {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(p.key)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.value))
		b.WriteByte('"')
	}
	return b.String()
}
