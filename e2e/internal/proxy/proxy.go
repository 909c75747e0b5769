// Package proxy puts a slow reverse proxy between airlock and a registry, so a test can interrupt a
// run part-way at a known point: it delays every request, can throttle response bodies, and counts
// the writes and the response bytes that passed through.
package proxy

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
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
	// FaultRate is the share of requests (0..1) that get a fault, chosen at random from Faults.
	FaultRate float64
	// Faults are the faults to inject; empty means all of AllFaults.
	Faults []Fault
	// Seed makes the choice of faulty requests repeatable.
	Seed uint64
	// StallFor is how long a Stall fault holds a response body.
	StallFor time.Duration
	// Hook, when set, sees each request first and may answer it itself (it returns true then), as a
	// registry configured otherwise would: a refusal, a rewrite. target is the registry's host:port.
	Hook func(w http.ResponseWriter, r *http.Request, target string) bool
}

// Fault is one way a request fails.
type Fault string

// The faults the proxy injects.
const (
	Status500   Fault = "500 Internal Server Error"
	Status502   Fault = "502 Bad Gateway"
	Status503   Fault = "503 Service Unavailable"
	Status429   Fault = "429 Too Many Requests, Retry-After: 1"
	ResetBody   Fault = "connection reset in the middle of a response body"
	ResetUpload Fault = "connection reset in the middle of an upload"
	Stall       Fault = "response body stalls"
)

// AllFaults lists every fault.
var AllFaults = []Fault{Status500, Status502, Status503, Status429, ResetBody, ResetUpload, Stall}

// Proxy forwards to a registry.
type Proxy struct {
	// Host is the proxy's host:port on 127.0.0.1.
	Host   string
	writes atomic.Int64
	served atomic.Int64
	ranges atomic.Int64

	mu       sync.Mutex
	rng      *rand.Rand
	injected map[Fault]int
}

// Injected returns how many of each fault were injected.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// pick decides whether this request gets a fault, and which.
func (p *Proxy) pick(o Options, r *http.Request) Fault {
	if o.FaultRate <= 0 {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= o.FaultRate {
		return ""
	}
	faults := o.Faults
	if len(faults) == 0 {
		faults = AllFaults
	}
	f := faults[p.rng.IntN(len(faults))]
	if f == ResetUpload && (r.Body == nil || r.ContentLength == 0 || r.Method == http.MethodGet || r.Method == http.MethodHead) {
		f = Status503
	}
	if (f == ResetBody || f == Stall) && r.Method == http.MethodHead {
		f = Status502
	}
	p.injected[f]++
	return f
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
	p := &Proxy{rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), injected: map[Fault]int{}}
	if o.StallFor == 0 {
		o.StallFor = 3 * time.Second
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(o.Delay)
		switch r.Method {
		case http.MethodPut, http.MethodPost, http.MethodPatch:
			p.writes.Add(1)
		}
		if r.Header.Get("Range") != "" {
			p.ranges.Add(1)
		}
		if o.Hook != nil && o.Hook(w, r, target) {
			return
		}
		cw := &countingWriter{ResponseWriter: w, p: p, rate: o.BytesPerSecond}
		switch f := p.pick(o, r); f {
		case Status500, Status502, Status503:
			code := map[Fault]int{Status500: 500, Status502: 502, Status503: 503}[f]
			http.Error(w, string(f), code)
			return
		case Status429:
			w.Header().Set("Retry-After", "1")
			http.Error(w, string(f), http.StatusTooManyRequests)
			return
		case ResetUpload:
			io.CopyN(io.Discard, r.Body, 512)
			panic(http.ErrAbortHandler)
		case ResetBody:
			cw.abortAfter = 256
		case Stall:
			cw.stallAfter, cw.stallFor = 256, o.StallFor
		}
		rp.ServeHTTP(cw, r)
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

	written    int64
	abortAfter int64 // > 0: drop the connection after this many body bytes
	stallAfter int64 // > 0: hold the body for stallFor after this many bytes
	stallFor   time.Duration
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.abortAfter > 0 && w.written+int64(len(b)) > w.abortAfter {
		n, _ := w.ResponseWriter.Write(b[:w.abortAfter-w.written])
		w.written += int64(n)
		w.Flush()
		panic(http.ErrAbortHandler)
	}
	if w.stallAfter > 0 && w.written+int64(len(b)) > w.stallAfter {
		n, _ := w.ResponseWriter.Write(b[:w.stallAfter-w.written])
		w.written += int64(n)
		w.Flush()
		time.Sleep(w.stallFor)
		w.stallAfter = 0
		m, err := w.Write(b[n:])
		return n + m, err
	}
	w.written += int64(len(b))
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
