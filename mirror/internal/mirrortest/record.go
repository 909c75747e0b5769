package mirrortest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"airlock.dev/airlock/registry"
)

// RecordingRegistry is go-containerregistry's registry with every request recorded, as
// "METHOD PATH?QUERY", in the order they came. A request Hold picks is held HoldFor before it is
// served; MaxHeld says how many were held at once, at most.
type RecordingRegistry struct {
	Hold    func(*http.Request) bool
	HoldFor time.Duration

	next     http.Handler
	mu       sync.Mutex
	requests []string
	held     int
	maxHeld  int
}

func (r *RecordingRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	line := req.Method + " " + req.URL.Path
	if req.URL.RawQuery != "" {
		line += "?" + req.URL.RawQuery
	}
	r.mu.Lock()
	r.requests = append(r.requests, line)
	r.mu.Unlock()
	if r.Hold != nil && r.Hold(req) {
		r.mu.Lock()
		r.held++
		r.maxHeld = max(r.maxHeld, r.held)
		r.mu.Unlock()
		time.Sleep(r.HoldFor)
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
	}
	r.next.ServeHTTP(w, req)
}

// MaxHeld returns the most requests held at once so far.
func (r *RecordingRegistry) MaxHeld() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxHeld
}

// Requests returns the requests recorded so far, and forgets them.
func (r *RecordingRegistry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// Matching returns the requests recorded so far that start with method and contain each of parts.
func Matching(requests []string, method string, parts ...string) []string {
	var out []string
next:
	for _, q := range requests {
		if !strings.HasPrefix(q, method+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(q, p) {
				continue next
			}
		}
		out = append(out, q)
	}
	return out
}

// StartRecordingRegistry starts a RecordingRegistry, set up by each of set first, and returns its
// host, a client and the recorder.
func StartRecordingRegistry(t *testing.T, set ...func(*RecordingRegistry)) (string, *registry.Registries, *RecordingRegistry) {
	t.Helper()
	rec := &RecordingRegistry{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
	for _, f := range set {
		f(rec)
	}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), regs, rec
}
