// Package proxy puts a slow reverse proxy between airlock and a registry, so a test can interrupt a
// run part-way at a known point: it delays every request, can throttle response bodies, injects
// faults, counts the writes and the bytes that passed through, and logs every request it saw (when,
// what, how it ended), so a test can assert what airlock did on the wire rather than what it says it did.
package proxy

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
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
	// FaultRate is the share of requests (0..1) that get a fault. The kind is chosen among the
	// Faults that can take effect on that request (see Applicable), the kind injected least so far
	// first, ties broken at random: so every kind occurs as soon as requests it applies to get faults.
	FaultRate float64
	// Faults are the faults to inject; empty means all of AllFaults.
	Faults []Fault
	// EachAtLeast, when set, injects each kind of Faults on the first requests it can take effect on
	// until it has taken effect this many times, whatever FaultRate says: every kind then occurs in
	// every run, not only in the lucky ones.
	EachAtLeast int
	// Seed makes the choice of faulty requests repeatable.
	Seed uint64
	// StallFor is how long a Stall fault holds a response body (default 3s); StallForever holds it
	// until the client gives up (closes the connection), as a peer that went silent would.
	StallFor time.Duration
	// Hook, when set, sees each request first and may answer it itself (it returns true then), as a
	// registry configured otherwise would: a refusal, a rewrite. target is the registry's host:port.
	Hook func(w http.ResponseWriter, r *http.Request, target string) bool
	// OnRequest, when set, is called as each request arrives, after it is counted and logged (n is
	// how many requests arrived before it): a test can act at a known point (kill the client).
	OnRequest func(r *http.Request, n int)
}

// StallForever, as Options.StallFor, holds a stalled body until the client closes the connection.
const StallForever time.Duration = -1

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

// bodyFaultAfter is how many body bytes pass before ResetBody or Stall strikes; a body this short or
// shorter cannot get either, so neither is injected (nor counted) there.
const bodyFaultAfter = 256

// Applicable tells whether f can take effect on r: ResetUpload needs a request body; ResetBody and
// Stall need a response body, so not a HEAD, and Stall only a blob download (GET .../blobs/...),
// the transfer airlock's stall watchdog guards. Whether the body is long enough is known only when
// the response starts: a fault on a body of 256 bytes or less is dropped then, and not counted.
func Applicable(f Fault, r *http.Request) bool {
	switch f {
	case ResetUpload:
		return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodHead
	case ResetBody:
		return r.Method == http.MethodGet
	case Stall:
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
	}
	return true
}

// Request is one request the proxy saw, and how it ended.
type Request struct {
	Method, Path string
	// Query is the URL's raw query (an upload's digest=, a mount's mount= and from=).
	Query string
	// Range is the request's Range header, if any.
	Range string
	// Start is when it arrived, End when the proxy was done with it.
	Start, End time.Time
	// Status is the status sent (0: none, the connection was dropped first).
	Status int
	// Fault is the fault that took effect on it, if any.
	Fault Fault
	// Uploaded is how many request body bytes the proxy read; Served how many response body bytes it sent.
	Uploaded, Served int64
	// ClientGone: the client closed the connection while the proxy held a stalled body.
	ClientGone bool
}

// OK tells whether the request was answered in full with a 2xx status and no fault.
func (r Request) OK() bool {
	return r.Fault == "" && !r.ClientGone && r.Status >= 200 && r.Status < 300
}

// Write tells whether the request asks the registry to change something (POST, PUT, PATCH, DELETE).
func (r Request) Write() bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// Proxy forwards to a registry.
type Proxy struct {
	// Host is the proxy's host:port on 127.0.0.1.
	Host     string
	writes   atomic.Int64
	served   atomic.Int64
	uploaded atomic.Int64
	ranges   atomic.Int64
	done     chan struct{}

	mu       sync.Mutex
	rng      *rand.Rand
	injected map[Fault]int
	log      []*Request
}

// Injected returns how many of each fault took effect.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Requests returns every request seen so far, in the order they arrived (a copy).
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.log))
	for i, r := range p.log {
		out[i] = *r
	}
	return out
}

// Count returns how many requests seen so far match.
func (p *Proxy) Count(match func(Request) bool) int {
	n := 0
	for _, r := range p.Requests() {
		if match(r) {
			n++
		}
	}
	return n
}

// pick decides whether this request gets a fault, and which. A kind owed (taken effect fewer than
// EachAtLeast times) that applies to the request is injected first, whatever the rate; otherwise
// FaultRate decides, and the kind is, among those that apply, the one that took effect least often
// so far. A body fault (ResetBody, Stall) picked here is dropped if the body proves too short.
func (p *Proxy) pick(o Options, r *http.Request) Fault {
	faults := o.Faults
	if len(faults) == 0 {
		faults = AllFaults
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var owed []Fault
	for _, f := range faults {
		if p.injected[f] < o.EachAtLeast && Applicable(f, r) {
			owed = append(owed, f)
		}
	}
	if len(owed) > 0 {
		return p.least(owed, r)
	}
	if o.FaultRate <= 0 || p.rng.Float64() >= o.FaultRate {
		return ""
	}
	return p.least(faults, r)
}

// least returns, among the faults that apply to r, one that took effect least often (p.mu held).
func (p *Proxy) least(faults []Fault, r *http.Request) Fault {
	var least []Fault
	for _, f := range faults {
		if !Applicable(f, r) {
			continue
		}
		switch {
		case len(least) == 0 || p.injected[f] < p.injected[least[0]]:
			least = []Fault{f}
		case p.injected[f] == p.injected[least[0]]:
			least = append(least, f)
		}
	}
	if len(least) == 0 {
		return ""
	}
	return least[p.rng.IntN(len(least))]
}

// took records that f took effect on req.
func (p *Proxy) took(f Fault, req *Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.injected[f]++
	req.Fault = f
}

// Writes counts the PUT, POST and PATCH requests forwarded so far.
func (p *Proxy) Writes() int64 { return p.writes.Load() }

// Served counts the response body bytes sent so far.
func (p *Proxy) Served() int64 { return p.served.Load() }

// Uploaded counts the request body bytes read so far.
func (p *Proxy) Uploaded() int64 { return p.uploaded.Load() }

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
	p := &Proxy{rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), injected: map[Fault]int{}, done: make(chan struct{})}
	if o.StallFor == 0 {
		o.StallFor = 3 * time.Second
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Range: r.Header.Get("Range"), Start: time.Now()}
		p.mu.Lock()
		n := len(p.log)
		p.log = append(p.log, req)
		p.mu.Unlock()
		cw := &countingWriter{ResponseWriter: w, p: p, req: req, rate: o.BytesPerSecond, gone: r.Context().Done()}
		if r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, p: p, req: req}
		}
		defer func() {
			p.mu.Lock()
			req.End, req.Status = time.Now(), cw.status
			p.mu.Unlock()
		}()
		switch r.Method {
		case http.MethodPut, http.MethodPost, http.MethodPatch:
			p.writes.Add(1)
		}
		if req.Range != "" {
			p.ranges.Add(1)
		}
		if o.OnRequest != nil {
			o.OnRequest(r, n)
		}
		time.Sleep(o.Delay)
		if o.Hook != nil && o.Hook(cw, r, target) {
			return
		}
		switch f := p.pick(o, r); f {
		case Status500, Status502, Status503:
			p.took(f, req)
			code := map[Fault]int{Status500: 500, Status502: 502, Status503: 503}[f]
			http.Error(cw, string(f), code)
			return
		case Status429:
			p.took(f, req)
			cw.Header().Set("Retry-After", "1")
			http.Error(cw, string(f), http.StatusTooManyRequests)
			return
		case ResetUpload:
			p.took(f, req)
			io.CopyN(io.Discard, r.Body, 512)
			panic(http.ErrAbortHandler)
		case ResetBody:
			cw.abortAfter = bodyFaultAfter
		case Stall:
			cw.stallAfter, cw.stallFor, cw.done = bodyFaultAfter, o.StallFor, p.done
		}
		rp.ServeHTTP(cw, r)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() {
		close(p.done) // releases bodies held until the client gives up
		srv.Close()
	})
	p.Host = l.Addr().String()
	return p
}

type countingBody struct {
	io.ReadCloser
	p   *Proxy
	req *Request
}

func (b *countingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.p.uploaded.Add(int64(n))
	b.p.mu.Lock()
	b.req.Uploaded += int64(n)
	b.p.mu.Unlock()
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	p    *Proxy
	req  *Request
	rate int64
	gone <-chan struct{} // closed when the client goes away
	done <-chan struct{} // closed when the proxy shuts down

	status     int
	written    int64
	abortAfter int64 // > 0: drop the connection after this many body bytes
	stallAfter int64 // > 0: hold the body for stallFor after this many bytes
	stallFor   time.Duration
}

// WriteHeader drops a body fault the response cannot take: a body of bodyFaultAfter bytes or less
// (by its Content-Length), or an answer other than 200 or 206.
func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if w.abortAfter > 0 || w.stallAfter > 0 {
			size, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64)
			if (code != http.StatusOK && code != http.StatusPartialContent) || (err == nil && size <= bodyFaultAfter) {
				w.abortAfter, w.stallAfter = 0, 0
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.abortAfter > 0 && w.written+int64(len(b)) > w.abortAfter {
		w.send(b[:w.abortAfter-w.written])
		w.Flush()
		w.p.took(ResetBody, w.req)
		panic(http.ErrAbortHandler)
	}
	if w.stallAfter > 0 && w.written+int64(len(b)) > w.stallAfter {
		n, _ := w.send(b[:w.stallAfter-w.written])
		w.Flush()
		w.p.took(Stall, w.req)
		w.stallAfter = 0
		if w.stallFor < 0 {
			select {
			case <-w.gone:
				w.p.mu.Lock()
				w.req.ClientGone = true
				w.p.mu.Unlock()
			case <-w.done:
			case <-time.After(5 * time.Minute):
			}
			panic(http.ErrAbortHandler)
		}
		time.Sleep(w.stallFor)
		m, err := w.Write(b[n:])
		return n + m, err
	}
	return w.send(b)
}

// send writes b, throttled when a rate is set, and counts what went out.
func (w *countingWriter) send(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		chunk := b
		if w.rate > 0 && int64(len(chunk)) > w.rate/20 {
			chunk = chunk[:w.rate/20]
		}
		n, err := w.ResponseWriter.Write(chunk)
		total += n
		w.written += int64(n)
		w.p.served.Add(int64(n))
		w.p.mu.Lock()
		w.req.Served += int64(n)
		w.p.mu.Unlock()
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
