package registries

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// GGCRHandler returns go-containerregistry's in-memory registry with the OCI 1.1
// referrers API turned on and its request log discarded.
func GGCRHandler() http.Handler {
	return registry.New(
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
}

// StartGGCR serves GGCRHandler on a free loopback port until the test ends and returns
// its host:port.
func StartGGCR(t testing.TB) string {
	t.Helper()
	host, stop, err := StartGGCRServer(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start go-containerregistry registry: %v", err)
	}
	t.Cleanup(stop)
	return host
}

// StartGGCRServer serves GGCRHandler on addr (port 0 picks a free one) and returns the
// host:port it listens on and a function that stops it. ctx bounds only the listen.
func StartGGCRServer(ctx context.Context, addr string) (host string, stop func(), err error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: GGCRHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("go-containerregistry registry on %s: %v", l.Addr(), err)
		}
	}()
	stop = func() {
		_ = srv.Close()
		<-done
	}
	return l.Addr().String(), stop, nil
}
