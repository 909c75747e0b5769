package mirror

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RealmMarkerPath is the path, on a registry's own host, that stands for a token realm the user named.
// See RealmTransport.
const RealmMarkerPath = "/.airlock/token-realm"

// maxRealmRedirects bounds the same-origin redirects followed for a forwarded token request.
const maxRealmRedirects = 5

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), which oras-go counts as internal.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// metadataPrefixes are cloud instance metadata services and other addresses that no token request is
// ever sent to, even to a realm the user named: a token or credentials from there must not reach a
// registry.
var metadataPrefixes = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local: AWS, GCP, Azure, OCI, OpenStack... at 169.254.169.254, ECS at 169.254.170.2
	netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local
	netip.MustParsePrefix("fd00:ec2::/32"),      // AWS IMDS and EKS Pod Identity over IPv6 (fd00:ec2::254, fd00:ec2::23)
	netip.MustParsePrefix("fd20:ce::254/128"),   // Google Cloud metadata over IPv6
	netip.MustParsePrefix("fd00:c1::/32"),       // Oracle Cloud metadata over IPv6 (fd00:c1::a9fe:a9fe)
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("192.0.0.192/32"),     // Oracle Cloud (classic) metadata
	netip.MustParsePrefix("168.63.129.16/32"),   // Azure WireServer
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network": 0.0.0.0 reaches the local host
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
}

// v4Embedding are IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64), or in bits
// 16 to 47 (6to4): 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway.
var (
	nat64Prefixes = []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48")}
	sixToFour     = netip.MustParsePrefix("2002::/16")
)

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
// token requests through forward (nil means NewRealmForwardTransport of http.DefaultTransport). The
// token services in realms (host or host:port, as for --token-realm) may be forwarded to.
func NewRealmTransport(next, forward http.RoundTripper, realms []string) (*RealmTransport, error) {
	if forward == nil {
		forward = NewRealmForwardTransport(http.DefaultTransport.(*http.Transport))
	}
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
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || h == "" {
			return "", bad("bad port")
		}
		if a, err := netip.ParseAddr(h); err == nil && forbiddenRealmAddr(a) {
			return "", bad("a cloud metadata, link-local, multicast or unspecified address, which is never sent credentials")
		}
		return s, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	if strings.ContainsAny(s, "[]") {
		return "", bad("not a host name")
	}
	if a, err := netip.ParseAddr(s); err == nil && forbiddenRealmAddr(a) {
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

// sameHostPort reports whether a and b are the same host name and port. The scheme is not compared:
// oras-go refuses an http realm for an https registry by itself.
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
	seen := map[string]bool{}
	for _, p := range params {
		k := strings.ToLower(p.key)
		if seen[k] {
			return "", fmt.Errorf("registry %s sent a Bearer challenge with %q twice; refused", registry.Host, p.key)
		}
		seen[k] = true
	}
	if i := slicesIndexParam(params, "realm"); i >= 0 {
		realm, err := t.checkRealm(registry, params[i].value)
		if err != nil {
			return "", err
		}
		params[i].value = realm
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

func describeAddrs(host string, addrs []netip.Addr) string {
	if a, err := netip.ParseAddr(host); err == nil && len(addrs) == 1 && addrs[0] == a.Unmap() {
		return "a loopback or private address"
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return "a name resolving to " + strings.Join(s, ", ")
}

// forbiddenRealm says why no token request may go to u, announced by registry, when one of addrs is a
// metadata, link-local, multicast or unspecified address.
func forbiddenRealm(registry, u *url.URL, addrs []netip.Addr) error {
	for _, a := range addrs {
		if forbiddenRealmAddr(a) {
			return fmt.Errorf("registry %s names %s as its token service, on %s: a cloud metadata, link-local, multicast or unspecified address; never sent credentials, even with --token-realm",
				registry.Host, redact(u), a)
		}
	}
	return nil
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

// embeddedV4 returns the IPv4 address carried in a NAT64 or 6to4 address.
func embeddedV4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	for _, p := range nat64Prefixes {
		if p.Contains(a) {
			return netip.AddrFrom4([4]byte(b[12:16])), true
		}
	}
	if sixToFour.Contains(a) {
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// forbiddenRealmAddr reports whether a token request must never go to a: a cloud metadata service
// (metadataPrefixes), link-local, unspecified or multicast, also when carried in a NAT64 or 6to4
// address.
func forbiddenRealmAddr(a netip.Addr) bool {
	a = a.Unmap()
	if v4, ok := embeddedV4(a); ok && forbiddenRealmAddr(v4) {
		return true
	}
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range metadataPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// internalAddr reports whether oras-go refuses a realm on a (loopback, private, CGNAT; link-local and
// unspecified are forbidden here anyway), counting the IPv4 address inside NAT64 and 6to4 addresses.
func internalAddr(a netip.Addr) bool {
	a = a.Unmap()
	if v4, ok := embeddedV4(a); ok && internalAddr(v4) {
		return true
	}
	return a.IsLoopback() || a.IsPrivate() || cgnat.Contains(a) || forbiddenRealmAddr(a)
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

// RealmDialControl is a net.Dialer Control function for the transport of forwarded token requests: the
// last check, on the address actually connected to, that it is no metadata, link-local, multicast or
// unspecified address.
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
		return fmt.Errorf("token realm address %s is a cloud metadata, link-local, multicast or unspecified address; refused", a)
	}
	return nil
}

// realmPin is the host of a forwarded token request and the addresses forwardToRealm checked for it.
type realmPin struct {
	host  string
	addrs []netip.Addr
}

type realmPinKey struct{}

// NewRealmForwardTransport returns the transport for forwarded token requests: base, without a proxy,
// connecting only to the addresses forwardToRealm resolved and checked for the request.
//
// Why no proxy: through a proxy, the dialer sees only the proxy's address, and the proxy resolves the
// realm's name itself, to whatever it likes: the check would guard nothing. Realms are only forwarded
// when they are on loopback or private addresses, which are reached directly anyway (Go never proxies
// loopback). Why pinned: the name is resolved once, the addresses are checked, and exactly those are
// dialled, so a second answer from DNS (rebinding) cannot send the credentials elsewhere.
func NewRealmForwardTransport(base *http.Transport) *http.Transport {
	tr := base.Clone()
	tr.Proxy = nil
	tr.DialTLSContext = nil
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: RealmDialControl}
	tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		pin, ok := ctx.Value(realmPinKey{}).(realmPin)
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if !ok || !sameHostName(host, pin.host) {
			return nil, fmt.Errorf("token realm connection to %s: not the address checked for it; refused", address)
		}
		var errs []error
		for _, a := range pin.addrs {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return tr
}

// forwardToRealm sends a marker request to the realm it stands for and returns the realm's answer.
func (t *RealmTransport) forwardToRealm(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	realm, sig := q.Get("realm"), q.Get("sig")
	q.Del("realm")
	q.Del("sig")
	if realm == "" || !hmac.Equal([]byte(sig), []byte(t.sign(req.URL.Host, realm))) {
		closeBody(req)
		return nil, fmt.Errorf("token realm %q was not announced by registry %s; refused", realm, req.URL.Host)
	}
	target, err := url.Parse(realm)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("token realm %q: %w", realm, err)
	}
	// Checked again, right before sending: resolved now, and the request pinned to these addresses.
	addrs, err := t.resolve(target.Hostname())
	if err == nil {
		err = forbiddenRealm(&url.URL{Host: req.URL.Host}, target, addrs)
	}
	if err == nil && !t.named(target) {
		err = fmt.Errorf("token realm %s is not named with --token-realm; refused", redact(target))
	}
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("token realm %s: %w", redact(target), err)
	}
	// Exactly the announced URL, with the query oras-go added to the marker (service, scope) appended.
	if extra := q.Encode(); extra != "" {
		if target.RawQuery != "" {
			target.RawQuery += "&"
		}
		target.RawQuery += extra
	}
	ctx := context.WithValue(req.Context(), realmPinKey{}, realmPin{host: target.Hostname(), addrs: addrs})
	out := req.Clone(ctx)
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
		out = out.Clone(ctx)
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
