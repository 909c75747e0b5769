// Package proxy puts a slow reverse proxy between airlock and a registry, so a test can interrupt a
// run part-way at a known point: it delays every request, can throttle response bodies, and counts
// the writes and the response bytes that passed through.
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

// Options slow the proxy down.
type Options struct {
	// Delay is waited before each request is forwarded.
	Delay time.Duration
	// BytesPerSecond, when set, throttles response bodies.
	BytesPerSecond int64
}

// Proxy forwards to a registry.
type Proxy struct {
	// Host is the proxy's host:port on 127.0.0.1.
	Host   string
	writes atomic.Int64
	served atomic.Int64
	ranges atomic.Int64
}

// Writes counts the PUT, POST and PATCH requests forwarded so far.
func (p *Proxy) Writes() int64 { return p.writes.Load() }

// Served counts the response body bytes sent so far.
func (p *Proxy) Served() int64 { return p.served.Load() }

// RangeRequests counts requests that carried a Range header.
func (p *Proxy) RangeRequests() int64 { return p.ranges.Load() }

// Start serves a proxy to the registry at target (host:port) that waits delay before each request.
func Start(t testing.TB, target string, delay time.Duration) *Proxy {
	return StartWith(t, target, Options{Delay: delay})
}

// StartWith serves a proxy to the registry at target with the given options.
func StartWith(t testing.TB, target string, o Options) *Proxy {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.FlushInterval = -1
	p := &Proxy{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(o.Delay)
		switch r.Method {
		case http.MethodPut, http.MethodPost, http.MethodPatch:
			p.writes.Add(1)
		}
		if r.Header.Get("Range") != "" {
			p.ranges.Add(1)
		}
		rp.ServeHTTP(&countingWriter{ResponseWriter: w, p: p, rate: o.BytesPerSecond}, r)
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

type countingWriter struct {
	http.ResponseWriter
	p    *Proxy
	rate int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		chunk := b
		if w.rate > 0 && int64(len(chunk)) > w.rate/20 {
			chunk = chunk[:w.rate/20]
		}
		n, err := w.ResponseWriter.Write(chunk)
		total += n
		w.p.served.Add(int64(n))
		if err != nil {
			return total, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		if w.rate > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		b = b[n:]
	}
	return total, nil
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
