// Command testregistry serves go-containerregistry's in-memory registry, with the OCI 1.1
// referrers API, for the demo. It prints the host:port it listens on, then serves until
// interrupted.
//
//	testregistry -addr 127.0.0.1:0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"airlock.dev/airlock/e2e/internal/registries"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on; port 0 picks a free port")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	host, stop, err := registries.StartGGCRServer(ctx, *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testregistry: listen on %s: %v\n", *addr, err)
		os.Exit(2)
	}
	defer stop()
	fmt.Println(host)
	<-ctx.Done()
}
