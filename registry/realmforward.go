package registry

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// maxRealmRedirects bounds the same-origin redirects followed for a forwarded token request.
const maxRealmRedirects = 5

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
		closeReader(req.Body)
		return nil, fmt.Errorf("token realm %q was not announced by registry %s; refused", realm, req.URL.Host)
	}
	target, err := url.Parse(realm)
	if err != nil {
		closeReader(req.Body)
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
		closeReader(req.Body)
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
