package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/errcode"

	"airlock.dev/airlock/archive"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", fmt.Errorf("push: %w", syscall.ECONNRESET), true},
		{"body cut short", io.ErrUnexpectedEOF, true},
		{"stall", fmt.Errorf("%w: no byte for 1s", ErrStalled), true},
		{"503", &errcode.ErrorResponse{StatusCode: http.StatusServiceUnavailable}, true},
		{"429", &errcode.ErrorResponse{StatusCode: http.StatusTooManyRequests}, true},
		{"404", &errcode.ErrorResponse{StatusCode: http.StatusNotFound}, false},
		{"401", &errcode.ErrorResponse{StatusCode: http.StatusUnauthorized}, false},
		{"digest mismatch", &archive.DigestMismatchError{}, false},
		{"blob ended early", fmt.Errorf("push: %w", &archive.ShortBlobError{Got: 1, Size: 2}), true},
		{"a transport error", &url.Error{Op: "Get", URL: "http://r/v2/", Err: syscall.ECONNREFUSED}, true},
		// Told by type, not by text: an error that only reads like a transient one is final.
		{"text alone", errors.New("503 Service Unavailable: connection reset"), false},
		{"cancelled", context.Canceled, false},
		// A full local disk is not retried, even though the copy that hit it was also reading a body.
		{"disk full", &archive.LocalWriteError{Path: "/x", Err: errors.Join(syscall.ENOSPC, io.ErrUnexpectedEOF)}, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestRetryDoStopsOnPermanent: a disk-full error fails at once, with no backoff.
func TestRetryDoStopsOnPermanent(t *testing.T) {
	calls := 0
	err := Retry{Attempts: 6, Base: time.Second, Max: time.Second}.Do(context.Background(), "blob", func(context.Context) error {
		calls++
		return &archive.LocalWriteError{Path: "/full", Err: syscall.ENOSPC}
	})
	if calls != 1 || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("calls %d, err %v: want one call and the disk error at once", calls, err)
	}
	calls = 0
	err = Retry{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}.Do(context.Background(), "blob", func(context.Context) error {
		calls++
		return io.ErrUnexpectedEOF
	})
	if calls != 3 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("transient: calls %d, err %v; want 3 attempts", calls, err)
	}
}

// TestWatchdog: a transfer that keeps moving bytes is not cancelled, however long it takes; one that
// stops is, with ErrStalled as the cause, which StallErr puts in front of the error the read saw and
// Retryable retries.
func TestWatchdog(t *testing.T) {
	// Generous margins: the machine may be busy; only the order of events matters.
	const d = 300 * time.Millisecond
	ctx, kick, stop := WithWatchdog(context.Background(), d)
	r := KickReader(&slowReader{n: 40, every: 10 * time.Millisecond}, kick)
	if _, err := io.Copy(io.Discard, r); err != nil || ctx.Err() != nil {
		t.Fatalf("a moving transfer (40 reads 10ms apart, longer than %s in all) was stopped: %v, %v", d, err, ctx.Err())
	}
	stop()

	ctx, kick, stop = WithWatchdog(context.Background(), d)
	defer stop()
	kick()
	<-ctx.Done() // nothing moves: the watchdog must end it
	err := StallErr(ctx, context.Canceled)
	if !errors.Is(err, ErrStalled) || !Retryable(err) {
		t.Errorf("a stalled transfer: %v (retryable %v); want ErrStalled, retried", err, Retryable(err))
	}
	if err := StallErr(context.Background(), io.ErrUnexpectedEOF); err != io.ErrUnexpectedEOF {
		t.Errorf("StallErr of a context that did not stall changed the error: %v", err)
	}
}

type slowReader struct {
	n     int
	every time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	s.n--
	time.Sleep(s.every)
	p[0] = 1
	return 1, nil
}
