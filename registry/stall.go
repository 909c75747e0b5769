package registry

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// stallTransport cuts any response whose body moves no byte for d: a manifest, a referrers index, a
// tag list, a token, a blob download. A registry that sent headers and then nothing would otherwise
// hang airlock on every read but a blob's. The read then fails with ErrStalled, which Retryable
// retries. A blob download is watched twice, here and by the engine's watchdog (WithWatchdog, the
// same --stall-timeout), which also guards what no response body shows: an upload the registry
// stops reading. Two timer resets per read cost nothing beside the copy.
type stallTransport struct {
	next http.RoundTripper
	d    time.Duration
}

// newStallTransport returns next with every response body watched for d (0: next unchanged).
func newStallTransport(next http.RoundTripper, d time.Duration) http.RoundTripper {
	if d <= 0 {
		return next
	}
	return &stallTransport{next: next, d: d}
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	b := &stallBody{body: resp.Body, d: t.d, what: req.Method + " " + req.URL.Redacted()}
	b.timer = time.AfterFunc(t.d, b.expire)
	resp.Body = b
	return resp, nil
}

// stallBody closes its body when no read moved a byte for d, so that the pending Read returns.
type stallBody struct {
	body  io.ReadCloser
	d     time.Duration
	what  string
	timer *time.Timer

	mu      sync.Mutex
	stalled bool
}

func (b *stallBody) expire() {
	b.mu.Lock()
	b.stalled = true
	b.mu.Unlock()
	b.body.Close()
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.timer.Reset(b.d)
	}
	if err == io.EOF {
		b.timer.Stop()
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		stalled := b.stalled
		b.mu.Unlock()
		if stalled {
			return n, fmt.Errorf("%w: %s: no byte for %s (--stall-timeout)", ErrStalled, b.what, b.d)
		}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	return b.body.Close()
}
