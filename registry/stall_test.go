package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// stallingServer answers /v2/app/manifests/1 with its headers and the first bytes of a manifest, then
// holds the rest until the test ends. Other paths answer in full.
func stallingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/app/manifests/1" {
			io.WriteString(w, `{"schemaVersion":2}`)
			return
		}
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, `{"schemaVersion":`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestStallTransportCutsAStalledBody(t *testing.T) {
	srv := stallingServer(t)
	client := &http.Client{Transport: newStallTransport(http.DefaultTransport, 200*time.Millisecond)}
	// The test's own deadline: without the stall transport the read below would wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/app/manifests/1", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("read %q, err %v; want ErrStalled", b, err)
	}
	if !Retryable(err) || !strings.Contains(err.Error(), "GET "+srv.URL+"/v2/app/manifests/1") || !strings.Contains(err.Error(), "--stall-timeout") {
		t.Errorf("error %q: want retryable, naming the request and --stall-timeout", err)
	}
	if string(b) != `{"schemaVersion":` {
		t.Errorf("read %q before the stall, want the bytes sent", b)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the stall was cut after %s, not about 200ms", waited)
	}
}

func TestStallTransportLeavesMovingBodies(t *testing.T) {
	srv := stallingServer(t)
	client := &http.Client{Transport: newStallTransport(http.DefaultTransport, 200*time.Millisecond)}
	resp, err := client.Get(srv.URL + "/v2/app/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	// A body read to its end and left open past the timeout is not reported as stalled.
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != `{"schemaVersion":2}` {
		t.Fatalf("read %q, %v", b, err)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err := resp.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read after the end: %d, %v; want 0, EOF", n, err)
	}
	resp.Body.Close()
	if newStallTransport(http.DefaultTransport, 0) != http.DefaultTransport {
		t.Error("a zero timeout should leave the transport as it is")
	}
}

// stallOnce serves a blob at /v2/team/app/blobs/<digest> and takes monolithic uploads of it
// (POST ?digest=). The first request of the kind named by stall (GET or POST) stalls: a GET sends
// headers and half the blob, then nothing; a POST reads 64 KiB of the body, then reads no more. Both
// hold until the client gives up, which gone counts for the GET (a handler that does not read its
// request's body is not told the client went away). answerAfter delays every 201.
type stallOnce struct {
	blob        []byte
	stall       string
	answerAfter time.Duration

	mu      sync.Mutex
	seen    map[string]int
	gone    int
	release chan struct{}
}

func (s *stallOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen[r.Method]++
	first := s.seen[r.Method] == 1 && r.Method == s.stall
	s.mu.Unlock()
	hold := func() {
		select {
		case <-r.Context().Done():
			s.mu.Lock()
			s.gone++
			s.mu.Unlock()
		case <-s.release:
		}
	}
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Length", fmt.Sprint(len(s.blob)))
		if first {
			w.Write(s.blob[:len(s.blob)/2])
			w.(http.Flusher).Flush()
			hold()
			return
		}
		w.Write(s.blob)
	case http.MethodPost:
		if first {
			io.CopyN(io.Discard, r.Body, 64<<10)
			hold()
			return
		}
		b, _ := io.ReadAll(r.Body)
		time.Sleep(s.answerAfter)
		if digest.FromBytes(b).String() != r.URL.Query().Get("digest") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}
}

// stallRegistry starts s and a client whose stall timeout is d.
func stallRegistry(t *testing.T, s *stallOnce, d time.Duration) *remote.Repository {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	s.seen, s.release = map[string]int{}, make(chan struct{})
	srv := httptest.NewServer(s)
	t.Cleanup(func() { close(s.release); srv.Close() })
	regs, err := New(Options{StallTimeout: d, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := regs.Target(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestStalledTransfersAreCutAndRetried: a blob download whose registry stops sending and a blob
// upload whose registry stops reading are each cut after the stall timeout with ErrStalled, and the
// operation's Retry.Do tries again, which succeeds. The upload is far larger than the socket buffers,
// so that the client sees the registry stop reading. (A later attempt may be cut too on a machine
// too busy to move a byte for the timeout; only the first must be.)
func TestStalledTransfersAreCutAndRetried(t *testing.T) {
	// Long enough that a busy machine does not stall a moving transfer.
	const d = time.Second
	blob := bytes.Repeat([]byte("airlock!"), 4<<20) // 32 MiB
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	for _, tc := range []struct {
		name string
		op   func(ctx context.Context, repo *remote.Repository) error
	}{
		{http.MethodGet, func(ctx context.Context, repo *remote.Repository) error {
			rc, err := repo.Blobs().Fetch(ctx, desc)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(b, blob) {
				t.Fatal("downloaded another blob")
			}
			return err
		}},
		{http.MethodPost, func(ctx context.Context, repo *remote.Repository) error {
			open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }
			_, err := PushBlob(ctx, repo, desc, open, Upload{Monolithic: true})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stallOnce{blob: blob, stall: tc.name}
			repo := stallRegistry(t, s, d)
			var errs []error
			start := time.Now()
			err := fastRetry.Do(context.Background(), "blob", func(ctx context.Context) error {
				err := tc.op(ctx, repo)
				errs = append(errs, err)
				return err
			})
			if err != nil {
				t.Fatalf("%v (after %s)", err, time.Since(start))
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			wantGone := 0
			if tc.name == http.MethodGet {
				wantGone = 1
			}
			if len(errs) < 2 || !errors.Is(errs[0], ErrStalled) || s.seen[tc.name] != len(errs) || s.gone != wantGone {
				t.Errorf("attempts %v, %d %s requests, client gave up on %d (of the stalled one); want the first cut as stalled, then success", errs, s.seen[tc.name], tc.name, s.gone)
			}
			if cut := time.Since(start); cut < d {
				t.Errorf("done after %s: the stall was cut sooner than the timeout %s", cut, d)
			}
		})
	}
}

// TestSlowAnswerAfterUploadIsNotCut: once the body is sent, waiting for the registry's answer is not a
// stall (a registry may take a while to check a large blob), however long past the stall timeout.
func TestSlowAnswerAfterUploadIsNotCut(t *testing.T) {
	const d = 200 * time.Millisecond
	blob := bytes.Repeat([]byte("x"), 1<<20)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	s := &stallOnce{blob: blob, answerAfter: 4 * d}
	repo := stallRegistry(t, s, d)
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }
	if _, err := PushBlob(context.Background(), repo, desc, open, Upload{Monolithic: true}); err != nil {
		t.Fatalf("an upload answered %s after its body: %v", 4*d, err)
	}
}
