package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Retry bounds how long airlock keeps trying one operation. oras-go's retry transport retries single
// requests whose bodies it can rewind; a streamed blob (an upload, or a download cut off mid-body)
// is retried here, from the source, with exponential backoff and jitter.
type Retry struct {
	// Attempts is the most tries of one operation.
	Attempts int
	// Base and Max bound the wait between tries (doubling, with full jitter).
	Base, Max time.Duration
	// StallTimeout cancels a transfer that moved no byte for this long (0: never).
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

// Do runs fn until it succeeds, fails for good, or runs out of attempts. what names the operation
// (a reference and digest) for the final error, which carries the last failure.
func (r Retry) Do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	r = r.OrDefault()
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
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

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
		return er.StatusCode >= 500 || er.StatusCode == 429 || er.StatusCode == 408
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

// watchdog cancels a context when kick has not been called for d; the cause is ErrStalled.
type watchdog struct {
	mu     sync.Mutex
	timer  *time.Timer
	d      time.Duration
	cancel context.CancelCauseFunc
}

// WithWatchdog returns a context cancelled when the transfer stalls, and the function to call on
// progress. stop releases it.
func WithWatchdog(ctx context.Context, d time.Duration) (context.Context, func(), func()) {
	if d <= 0 {
		return ctx, func() {}, func() {}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: d, cancel: cancel}
	w.timer = time.AfterFunc(d, func() { cancel(fmt.Errorf("%w: no byte for %s", ErrStalled, d)) })
	kick := func() {
		w.mu.Lock()
		w.timer.Reset(w.d)
		w.mu.Unlock()
	}
	stop := func() {
		w.timer.Stop()
		cancel(nil)
	}
	return cctx, kick, stop
}

// StallErr returns the stall cause of ctx, if that is why it ended, else err.
func StallErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrStalled) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// KickReader returns r calling kick on every read that moved bytes, as WithWatchdog wants.
func KickReader(r io.Reader, kick func()) io.Reader { return &kickReader{r: r, kick: kick} }

type kickReader struct {
	r    io.Reader
	kick func()
}

func (k *kickReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if n > 0 {
		k.kick()
	}
	return n, err
}
