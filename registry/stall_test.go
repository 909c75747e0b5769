package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
