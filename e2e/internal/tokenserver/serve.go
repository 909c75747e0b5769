package tokenserver

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// Start serves s over TLS with cert on addr (such as "127.0.0.2:0") until the test ends, and returns
// the address it listens on. A loopback address other than 127.0.0.1 that cannot be bound (not Linux)
// skips the test, except in CI (CI=true), where a skip would hide that the test never ran: there it
// fails.
func Start(t testing.TB, s *Server, addr string, cert tls.Certificate) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", addr)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("token server: cannot listen on %s: %v (CI=true: a test that cannot run fails instead of skipping)", addr, err)
		}
		t.Skipf("token server: cannot listen on %s: %v", addr, err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Logf("token server on %s: %v", l.Addr(), err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return l.Addr().String()
}
