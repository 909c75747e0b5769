// Command airlock mirrors container images, with every signature, SBOM and attestation attached to
// them, into air-gapped registries, and verifies them offline before they are deployed.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
)

// Exit statuses, as documented in the design and in --help: 0 all done; 1 some images not done (a
// refusal, a refused tag move, a check that failed), the others done; 2 usage, or nothing could be done.
const (
	exitOK          = 0
	exitCheckFailed = 1
	exitError       = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// AIRLOCK_CPUPROFILE=FILE writes a CPU profile of the run (go tool pprof FILE), for benchmarks.
	if p := os.Getenv("AIRLOCK_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	code := run(ctx, os.Args[1:])
	stop()
	pprof.StopCPUProfile()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	cmd := newRootCmd()
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "airlock: %v\n", err)
	var ae *archive.CheckError
	var dm *archive.DigestMismatchError
	if errors.As(err, &ae) || errors.As(err, &dm) || errors.Is(err, plan.ErrCheckFailed) {
		return exitCheckFailed
	}
	return exitError
}
