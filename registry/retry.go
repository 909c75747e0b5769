package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Retry is airlock's one retry layer. It retries whole operations (a manifest push, a blob copy
// from its source, a tag list), so that what a single request cannot redo is redone: a streamed blob
// upload is opened again from its source, a download cut mid-body resumes with a Range request. The
// client (Registries) does not retry a request made inside Do; a request made outside any Do (a diff,
// verify reading a blob) is retried by the client with the same Do, so no request is retried by two
// layers. Attempts per request: at most Attempts sends of it (6 by default, --attempts), each attempt
// sending it once (on a registry's first challenge, once more with the token).
type Retry struct {
	// Attempts is the most tries of one operation.
	Attempts int
	// Base and Max bound the wait between tries (doubling, with full jitter).
	Base, Max time.Duration
	// StallTimeout is the default of --stall-timeout. Retry does not read it: the client cuts
	// stalled transfers (Options.StallTimeout, see stallTransport).
	StallTimeout time.Duration
}

// DefaultRetry is used when no Retry is given.
var DefaultRetry = Retry{Attempts: 6, Base: 250 * time.Millisecond, Max: 15 * time.Second, StallTimeout: 60 * time.Second}

// OrDefault returns r, or DefaultRetry when r sets no attempts.
func (r Retry) OrDefault() Retry {
	if r.Attempts <= 0 {
		return DefaultRetry
	}
	return r
}

// ErrStalled reports a transfer that stopped moving.
var ErrStalled = errors.New("transfer stalled")

// retriedKey marks the context of an operation Do retries: the client sends its requests once, and
// records in the *retryAfter the wait a registry asked for.
type retriedKey struct{}

// retryAfter holds the wait the last retryable answer asked for (its Retry-After header), for Do.
type retryAfter struct{ d atomic.Int64 }

// MaxRetryAfter bounds the wait a registry's Retry-After can impose on one attempt, so that a
// registry asking for hours cannot hold a run: past it the usual backoff applies.
const MaxRetryAfter = time.Minute

// note records the Retry-After of resp, a retryable answer: seconds, or an HTTP date.
func (h *retryAfter) note(resp *http.Response) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = time.Until(at)
	}
	if d > 0 && d <= MaxRetryAfter {
		h.d.Store(int64(d))
	}
}

// Do runs fn until it succeeds, fails for good, or runs out of attempts. what names the operation
// (a reference and digest) for the final error, which carries the last failure. Between attempts
// it waits with doubling backoff and jitter, or as long as the registry's last Retry-After asked
// (up to MaxRetryAfter) when that is longer.
func (r Retry) Do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	r = r.OrDefault()
	after := &retryAfter{}
	ctx = context.WithValue(ctx, retriedKey{}, after)
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(ctx)
		if err == nil || ctx.Err() != nil || !Retryable(err) {
			return err
		}
		if attempt >= r.Attempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", what, attempt, err)
		}
		wait := r.Base << (attempt - 1)
		if wait > r.Max || wait <= 0 {
			wait = r.Max
		}
		wait = wait/2 + rand.N(wait/2+1) // jitter
		if asked := time.Duration(after.d.Swap(0)); asked > wait {
			wait = asked
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

// retryTransport retries, with Do, a request made outside any Do whose body can be sent again: a
// transport error or a 5xx, 429 or 408 answer (the last such answer is returned as it came). Inside
// Do, and for a streamed body, it sends the request once.
type retryTransport struct {
	next  http.RoundTripper
	retry Retry
}

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if after, ok := req.Context().Value(retriedKey{}).(*retryAfter); ok || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		resp, err := t.next.RoundTrip(req)
		if ok && err == nil && retryableStatus(resp.StatusCode) {
			after.note(resp)
		}
		return resp, err
	}
	r := t.retry.OrDefault()
	var resp *http.Response
	sent := 0
	err := r.Do(req.Context(), req.Method+" "+req.URL.Redacted(), func(ctx context.Context) error {
		try := req
		if sent++; sent > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return err
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		var err error
		if resp, err = t.next.RoundTrip(try); err != nil {
			return err
		}
		if retryableStatus(resp.StatusCode) && sent < r.Attempts {
			ctx.Value(retriedKey{}).(*retryAfter).note(resp)
			resp.Body.Close()
			return &errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// retryableStatus reports an answer that may differ when asked again.
func retryableStatus(code int) bool { return code >= 500 || code == 429 || code == 408 }

// Retryable tells transient failures (network, 5xx, 429, 408, a stall, a body cut short) from final
// ones (not found, denied, content that does not match its digest).
func Retryable(err error) bool {
	// Every failure is told by its type, never by its text: net/http's and oras-go's errors keep
	// theirs (*url.Error is a net.Error, a registry's answer an *errcode.ErrorResponse).
	// An error that says it is permanent (a local disk error: a full disk does not empty by waiting).
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		return false
	}
	switch {
	case errors.Is(err, errdef.ErrNotFound), errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrStalled), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF):
		return true
	}
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		return retryableStatus(er.StatusCode)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// An error that says fetching again may succeed (archive.ShortBlobError: a source that ended a
	// blob early without an error of its own).
	var tr interface{ Transient() bool }
	if errors.As(err, &tr) {
		return tr.Transient()
	}
	return false
}
