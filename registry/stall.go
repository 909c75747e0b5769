package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// stallTransport is airlock's one stall guard. It cuts a request that moved no byte for d, in either
// direction: while its body is sent (a blob upload the registry stopped reading) and while its answer's
// body is read (a blob download, a manifest, a tag list, a token). Every transfer of a registry goes
// through it, so the copy engine keeps no watchdog of its own: a blob copied between registries is
// watched at both ends, and the archive side is a local disk. The cut request fails with ErrStalled,
// which Retryable retries; waiting for the answer's headers, after the body was sent, is bounded
// apart from it (ResponseHeaderTimeout: a registry may take a while to check an upload).
type stallTransport struct {
	next http.RoundTripper
	d    time.Duration
}

// newStallTransport returns next with every request watched for d (0: next unchanged).
func newStallTransport(next http.RoundTripper, d time.Duration) http.RoundTripper {
	if d <= 0 {
		return next
	}
	return &stallTransport{next: next, d: d}
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	stalled := new(atomic.Bool)
	what := req.Method + " " + req.URL.Redacted()
	sending := &watch{d: t.d, what: what, cancel: cancel, stalled: stalled}
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchedBody{ReadCloser: req.Body, w: sending}
		if getBody := req.GetBody; getBody != nil { // net/http sends it again on a connection lost early
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := getBody()
				return &watchedBody{ReadCloser: b, w: sending}, err
			}
		}
		sending.arm()
	}
	resp, err := t.next.RoundTrip(req)
	sending.end() // a body net/http still reads after the answer came does not count
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		cancel(nil)
		return resp, sending.explain(err)
	}
	reading := &watch{d: t.d, what: what, cancel: cancel, stalled: stalled}
	reading.arm()
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: reading, answer: true}
	return resp, nil
}

// watch cancels its request, with ErrStalled, when armed and no byte moved for d.
type watch struct {
	d       time.Duration
	what    string
	cancel  context.CancelCauseFunc
	stalled *atomic.Bool // shared by the two watches of one request

	mu    sync.Mutex
	timer *time.Timer
	ended bool
}

// arm starts or restarts the timer, unless w ended.
func (w *watch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ended:
	case w.timer == nil:
		w.timer = time.AfterFunc(w.d, func() { w.stalled.Store(true); w.cancel(ErrStalled) })
	default:
		w.timer.Reset(w.d)
	}
}

// end stops w for good.
func (w *watch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// explain turns the failure of a request w's timer cut into ErrStalled.
func (w *watch) explain(err error) error {
	if err != nil && err != io.EOF && w.stalled.Load() {
		return fmt.Errorf("%w: %s: no byte for %s (--stall-timeout)", ErrStalled, w.what, w.d)
	}
	return err
}

// watchedBody is a request's body or an answer's: every read that moved bytes rearms w, and its end
// ends w (a request's: the registry has it all and owes an answer).
type watchedBody struct {
	io.ReadCloser
	w      *watch
	answer bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.arm()
	}
	if err != nil {
		b.w.end()
	}
	if b.answer {
		err = b.w.explain(err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.w.end()
	if b.answer {
		b.w.cancel(nil)
	}
	return b.ReadCloser.Close()
}
