package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
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

// fastRetry is DefaultRetry with its attempts and waits of a millisecond.
var fastRetry = Retry{Attempts: DefaultRetry.Attempts, Base: time.Millisecond, Max: time.Millisecond}

// countingRegistry answers every request with status and counts them by method and path.
func countingRegistry(t *testing.T, status int) (*Registries, string, func(string) int) {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	regs, err := New(Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return regs, strings.TrimPrefix(srv.URL, "http://"), func(k string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[k]
	}
}

// TestAttemptsPerRequest: a request that always fails with a retryable status is sent exactly
// DefaultRetry.Attempts (6) times: by the operation's Retry.Do, as the engine pushes a manifest and
// copies a blob, or by the client, for a request made outside any Retry.Do (a diff, verify reading a
// blob). The client never retries inside Retry.Do: with oras-go's retry transport under Retry.Do, a
// failing manifest PUT was sent 6 x 6 = 36 times.
func TestAttemptsPerRequest(t *testing.T) {
	if DefaultRetry.Attempts != 6 {
		t.Fatalf("DefaultRetry.Attempts is %d; docs/auth.md and --attempts say 6", DefaultRetry.Attempts)
	}
	ctx := context.Background()
	manifest := []byte(`{"schemaVersion":2}`)
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("layer"), Size: 5}
	for _, tc := range []struct {
		name, request string
		op            func(ctx context.Context, repo *remote.Repository) error
		inRetryDo     bool
	}{
		{"manifest PUT in Retry.Do", "PUT /v2/team/app/manifests/" + md.Digest.String(), func(ctx context.Context, repo *remote.Repository) error {
			return repo.Manifests().Push(ctx, md, bytes.NewReader(manifest))
		}, true},
		{"blob GET in Retry.Do", "GET /v2/team/app/blobs/" + blob.Digest.String(), func(ctx context.Context, repo *remote.Repository) error {
			rc, err := repo.Blobs().Fetch(ctx, blob)
			if err == nil {
				rc.Close()
			}
			return err
		}, true},
		{"blob GET with Range in Retry.Do", "GET /v2/team/app/blobs/" + blob.Digest.String(), func(ctx context.Context, repo *remote.Repository) error {
			rc, err := FetchFrom(ctx, repo, blob, 2)
			if err == nil {
				rc.Close()
			}
			return err
		}, true},
		{"manifest HEAD outside Retry.Do", "HEAD /v2/team/app/manifests/v1", func(ctx context.Context, repo *remote.Repository) error {
			_, err := repo.Resolve(ctx, "v1")
			return err
		}, false},
		{"manifest PUT outside Retry.Do", "PUT /v2/team/app/manifests/" + md.Digest.String(), func(ctx context.Context, repo *remote.Repository) error {
			return repo.Manifests().Push(ctx, md, bytes.NewReader(manifest))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			regs, host, count := countingRegistry(t, http.StatusServiceUnavailable)
			repo, err := regs.Target(host + "/team/app")
			if err != nil {
				t.Fatal(err)
			}
			if tc.inRetryDo {
				err = fastRetry.Do(ctx, "op", func(ctx context.Context) error { return tc.op(ctx, repo) })
			} else {
				err = tc.op(ctx, repo)
			}
			var er *errcode.ErrorResponse
			if !errors.As(err, &er) || er.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("err %v; want the registry's 503", err)
			}
			if n := count(tc.request); n != 6 {
				t.Errorf("%s sent %d times, want 6", tc.request, n)
			}
		})
	}
}

// TestStreamedUploadSentOncePerAttempt: a blob upload the caller streams (its body cannot be sent
// again) is sent once per attempt of the operation that retries it from its source.
func TestStreamedUploadSentOncePerAttempt(t *testing.T) {
	regs, host, count := countingRegistry(t, http.StatusServiceUnavailable)
	repo, err := regs.Target(host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("layer")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	opens := 0
	open := func() (io.ReadCloser, error) { opens++; return io.NopCloser(bytes.NewReader(blob)), nil }
	err = fastRetry.Do(context.Background(), "push", func(ctx context.Context) error {
		_, err := PushBlob(ctx, repo, desc, open, Upload{Monolithic: true})
		return err
	})
	if !Retryable(err) || opens != 6 || count("POST /v2/team/app/blobs/uploads/") != 6 {
		t.Errorf("err %v, source opened %d times, %d POSTs; want 6 and 6", err, opens, count("POST /v2/team/app/blobs/uploads/"))
	}
	// Outside any Retry.Do, a streamed body is sent once: only its source can give it again.
	_, err = PushBlob(context.Background(), repo, desc, open, Upload{Monolithic: true})
	if err == nil || count("POST /v2/team/app/blobs/uploads/") != 7 {
		t.Errorf("err %v, %d POSTs in all; want one more", err, count("POST /v2/team/app/blobs/uploads/"))
	}
}

// TestRetryAfter: a registry that answers 429 with Retry-After is asked again no sooner than it
// said, by the operation's Retry.Do and by the client outside any Do (seconds and HTTP date forms);
// a Retry-After over MaxRetryAfter is not obeyed (the backoff, 1 ms here, applies).
func TestRetryAfter(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		header    func() string
		inRetryDo bool
		atLeast   time.Duration
		under     time.Duration
	}{
		{"seconds, in Retry.Do", func() string { return "1" }, true, 900 * time.Millisecond, MaxRetryAfter},
		{"seconds, outside Retry.Do", func() string { return "1" }, false, 900 * time.Millisecond, MaxRetryAfter},
		{"HTTP date, in Retry.Do", func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, true, 900 * time.Millisecond, MaxRetryAfter},
		{"over the bound", func() string { return "3600" }, true, 0, 30 * time.Second},
		{"not a number", func() string { return "soon" }, true, 0, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_CONFIG", t.TempDir())
			var mu sync.Mutex
			var times []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				times = append(times, time.Now())
				first := len(times) == 1
				mu.Unlock()
				if first {
					w.Header().Set("Retry-After", tc.header())
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
				w.Header().Set("Docker-Content-Digest", digest.FromString("m").String())
				w.Header().Set("Content-Length", "1")
			}))
			t.Cleanup(srv.Close)
			regs, err := New(Options{Retry: fastRetry})
			if err != nil {
				t.Fatal(err)
			}
			repo, err := regs.Target(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
			if err != nil {
				t.Fatal(err)
			}
			resolve := func(ctx context.Context) error { _, err := repo.Resolve(ctx, "v1"); return err }
			if tc.inRetryDo {
				err = fastRetry.Do(ctx, "op", resolve)
			} else {
				err = resolve(ctx)
			}
			if err != nil {
				t.Fatalf("after one 429: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 2 {
				t.Fatalf("%d requests, want 2", len(times))
			}
			if gap := times[1].Sub(times[0]); gap < tc.atLeast || gap >= tc.under {
				t.Errorf("asked again after %v; want at least %v and under %v", gap, tc.atLeast, tc.under)
			}
		})
	}
}
