package registry

// Linux only: the keep-alive settings are read back from the socket (TCP_KEEPIDLE, TCP_KEEPINTVL).

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
)

// TestRealmForwardKeepAlive: connections to a token realm send TCP keep-alives after 30s idle (the interval between probes is Go's own)
// (realmforward.go:40, KeepAlive: 30 * time.Second; as 30 / time.Second, 0, Go's default of 15s).
func TestRealmForwardKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	tr := NewRealmForwardTransport(http.DefaultTransport.(*http.Transport))
	ctx := context.WithValue(t.Context(), realmPinKey{}, realmPin{host: "127.0.0.1", addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	c, err := tr.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var idle, intvl, on int
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		on, optErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		if optErr == nil {
			idle, optErr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		}
		if optErr == nil {
			intvl, optErr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		}
	}); err != nil || optErr != nil {
		t.Fatal(err, optErr)
	}
	if on == 0 || idle != 30 {
		t.Errorf("keep-alive on=%d idle=%ds (interval %ds); want on, first probe after 30s idle", on, idle, intvl)
	}
}
