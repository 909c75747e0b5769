// Package proxy puts a slow reverse proxy between airlock and a registry, so a test can interrupt a
// run part-way at a known point: it delays every request and counts the writes that passed through.
package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards to a registry, delaying each request.
type Proxy struct {
	// Host is the proxy's host:port on 127.0.0.1.
	Host   string
	writes atomic.Int64
}

// Writes counts the PUT, POST and PATCH requests forwarded so far.
func (p *Proxy) Writes() int64 { return p.writes.Load() }

// Start serves a proxy to the registry at target (host:port) that waits delay before each request.
func Start(t testing.TB, target string, delay time.Duration) *Proxy {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &Proxy{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		switch r.Method {
		case http.MethodPut, http.MethodPost, http.MethodPatch:
			p.writes.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	p.Host = l.Addr().String()
	return p
}
