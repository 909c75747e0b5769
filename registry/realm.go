package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// RealmMarkerPath is the path, on a registry's own host, that stands for a token realm the user named.
// See RealmTransport.
const RealmMarkerPath = "/.airlock/token-realm"

// RealmTransport keeps a registry's credentials away from token services the user did not choose, and
// lets a registry hand out tokens from a token service on another loopback or private host when the
// user named that service with --token-realm.
//
// It sits under oras-go's auth.Client, so it sees every 401 and its `WWW-Authenticate: Bearer
// realm="R"` before oras-go does. oras-go accepts a realm on the registry's own host name (any port)
// or on public addresses, and refuses other loopback, private, link-local and CGNAT realms. R is
// checked here first (see checkRealm):
//
//   - R on a cloud metadata address (metadataPrefixes, link-local, multicast, unspecified), or on a
//     name resolving to one: refused, whatever the user named.
//   - R on the registry's own origin (same host name and port): left to oras-go.
//   - R on a loopback, private or CGNAT address, or on a name resolving to one, that the user named
//     with --token-realm: rewritten to a marker URL on the registry's own host,
//     `<scheme>://<registry>/.airlock/token-realm?realm=<R>&sig=<HMAC>`, which oras-go accepts as
//     same-host. When oras-go then requests the marker URL, the request (method, query, headers, body)
//     goes to exactly R, with the service and scope oras-go adds, and R's answer comes back: oras-go's
//     own token handling and cache stay in charge.
//   - R on such an address that the user did not name, including another port of the registry's own
//     host: refused, with the flag that would allow it. oras-go would accept another port of the
//     registry's host name by itself; on loopback that is any local service.
//   - R on public addresses only, or a name that does not resolve here (behind a proxy that resolves
//     names itself): left to oras-go.
//
// The challenge oras-go gets is the one checked here, re-serialised, so the two parsers cannot
// disagree about which realm was meant. A marker URL is honoured only with the HMAC this transport
// made for that registry host and realm, so a registry cannot forge one (on another registry's host,
// to get that registry's token service to answer with its credentials).
type RealmTransport struct {
	next    http.RoundTripper // the registry traffic
	forward http.RoundTripper // requests to named realms; see NewRealmForwardTransport
	lookup  func(host string) ([]netip.Addr, error)
	realms  []string // --token-realm entries: host or host:port, lower case, IPv6 without brackets when alone
	key     []byte   // HMAC key for marker URLs, new for each transport
}

// NewRealmTransport returns a RealmTransport that sends registry requests through next and forwarded
// token requests through forward (see NewRealmForwardTransport). The token services in realms (host or host:port, as for --token-realm) may be forwarded to.
func NewRealmTransport(next, forward http.RoundTripper, realms []string) (*RealmTransport, error) {
	t := &RealmTransport{next: next, forward: forward, lookup: lookupAddrs, key: make([]byte, 32)}
	if _, err := rand.Read(t.key); err != nil {
		return nil, err
	}
	for _, r := range realms {
		e, err := parseRealmEntry(r)
		if err != nil {
			return nil, err
		}
		t.realms = append(t.realms, e)
	}
	return t, nil
}

// parseRealmEntry checks one --token-realm value: HOST or HOST:PORT, no scheme, path or user info.
func parseRealmEntry(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("--token-realm %q: %s; give the token service's HOST or HOST:PORT, as in --token-realm auth.corp:5001", s, why)
	}
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", bad("empty")
	case strings.Contains(s, "://"):
		return "", bad("a URL")
	case strings.ContainsAny(s, "/@?#"):
		return "", bad("not a host name")
	}
	host, p, err := net.SplitHostPort(s)
	if err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || host == "" {
			return "", bad("bad port")
		}
	} else {
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			s = s[1 : len(s)-1]
		}
		if strings.ContainsAny(s, "[]") {
			return "", bad("not a host name")
		}
		host = s
	}
	if a, err := netip.ParseAddr(host); err == nil && forbiddenRealmAddr(a) {
		return "", bad("a cloud metadata, link-local, multicast or unspecified address, which is never sent credentials")
	}
	return s, nil
}

// named reports whether the user named the token service at u with --token-realm: an entry
// HOST:PORT matches that port only (the scheme's default port when u has none), HOST any port.
func (t *RealmTransport) named(u *url.URL) bool {
	host, port := u.Hostname(), effectivePort(u)
	for _, e := range t.realms {
		eh, ep, err := net.SplitHostPort(e)
		if err != nil {
			eh, ep = e, ""
		}
		if sameHostName(host, eh) && (ep == "" || ep == port) {
			return true
		}
	}
	return false
}

func sameHostName(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x.Unmap() == y.Unmap()
}

// effectivePort is u's port, or the default port of its scheme.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}

// sameHostPort reports whether a and b are the same host name and port (a token realm and its
// registry, an upload session and its registry). The scheme is not compared: oras-go refuses an http
// realm for an https registry by itself, and putToSession refuses a downgrade.
func sameHostPort(a, b *url.URL) bool {
	return sameHostName(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func (t *RealmTransport) sign(registryHost, realm string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(strings.ToLower(registryHost)))
	m.Write([]byte{0})
	m.Write([]byte(realm))
	return hex.EncodeToString(m.Sum(nil))
}

// RoundTrip implements http.RoundTripper.
func (t *RealmTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == RealmMarkerPath {
		return t.forwardToRealm(req)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// oras-go reads the first challenge only.
	values := resp.Header.Values("Www-Authenticate")
	if len(values) == 0 {
		return resp, nil
	}
	challenge, err := t.checkChallenge(req.URL, values[0])
	if err != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, err
	}
	if challenge != values[0] {
		resp.Header = resp.Header.Clone()
		resp.Header.Del("Www-Authenticate")
		resp.Header.Add("Www-Authenticate", challenge)
		for _, v := range values[1:] {
			resp.Header.Add("Www-Authenticate", v)
		}
	}
	return resp, nil
}

// checkChallenge returns the challenge oras-go is to see: a Bearer challenge re-serialised, with its
// realm checked and, for a named token service, replaced by the marker URL. Other challenges are left
// alone.
func (t *RealmTransport) checkChallenge(registry *url.URL, challenge string) (string, error) {
	scheme, params, ok := parseChallenge(challenge)
	if !ok {
		if f := strings.Fields(challenge); len(f) > 0 && strings.EqualFold(f[0], "Bearer") {
			return "", fmt.Errorf("registry %s sent a malformed Bearer challenge; refused", registry.Host)
		}
		return challenge, nil
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return challenge, nil
	}
	seen, realm := map[string]bool{}, -1
	for i, p := range params {
		k := strings.ToLower(p.key)
		if seen[k] {
			return "", fmt.Errorf("registry %s sent a Bearer challenge with %q twice; refused", registry.Host, p.key)
		}
		seen[k] = true
		if k == "realm" {
			realm = i
		}
	}
	if realm >= 0 {
		checked, err := t.checkRealm(registry, params[realm].value)
		if err != nil {
			return "", err
		}
		params[realm].value = checked
	}
	return formatChallenge(scheme, params), nil
}

// checkRealm returns the realm oras-go is to use for a realm the registry announced, or why no token
// request may go there. See RealmTransport for the rules.
func (t *RealmTransport) checkRealm(registry *url.URL, realm string) (string, error) {
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return realm, nil // oras-go refuses it
	}
	switch u.Scheme {
	case "https":
	case "http":
		if registry.Scheme != "http" {
			return realm, nil // oras-go refuses the downgrade
		}
	default:
		return realm, nil // oras-go refuses the scheme
	}
	addrs, lookupErr := t.resolve(u.Hostname())
	if err := forbiddenRealm(registry, u, addrs); err != nil {
		return "", err
	}
	if sameHostPort(registry, u) {
		return realm, nil
	}
	if lookupErr != nil {
		return realm, nil // as oras-go does: behind a proxy the name may resolve there only
	}
	internal := false
	for _, a := range addrs {
		internal = internal || internalAddr(a)
	}
	if !internal {
		return realm, nil
	}
	if !t.named(u) {
		return "", fmt.Errorf("registry %s names %s as its token service, on %s; airlock sends the registry's credentials to a token service on a loopback or private address only when it is on the registry's own host and port or named with --token-realm. If you trust it, add --token-realm %s",
			registry.Host, redact(u), describeAddrs(u.Hostname(), addrs), realmFlagValue(u))
	}
	if u.User != nil {
		return "", fmt.Errorf("registry %s names %s as its token service, with user info in the URL; refused", registry.Host, redact(u))
	}
	marker := url.URL{Scheme: registry.Scheme, Host: registry.Host, Path: RealmMarkerPath,
		RawQuery: url.Values{"realm": {realm}, "sig": {t.sign(registry.Host, realm)}}.Encode()}
	return marker.String(), nil
}

// realmFlagValue is the --token-realm value that names u's host and port.
func realmFlagValue(u *url.URL) string {
	return net.JoinHostPort(u.Hostname(), effectivePort(u))
}

// resolve returns the addresses of host: itself for an IP literal, else what the lookup finds.
func (t *RealmTransport) resolve(host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := t.lookup(host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%s: no address", host)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, err
}
