package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	plainHTTP   []string
	tls         []string
	tokenRealms []string
	caFile      string
	format      string
	verbose     bool
	quiet       bool
	concurrency int
	stall       time.Duration
	attempts    int
}

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "airlock",
		Short: "Mirror container images and everything attached to them into air-gapped registries",
		Long: `airlock moves container images, with every signature, SBOM and attestation attached to them,
into air-gapped sites, and proves on the far side that what arrived is what was approved.

  connected host:     airlock save -c imageset.yaml -o /media/usb/airlock --sign-key transfer.key
  disconnected site:  airlock load /media/usb/airlock --to registry.site:5000/mirror --archive-key transfer.pub
  before deploy:      airlock verify registry.site:5000/mirror --archive /media/usb/airlock --archive-key transfer.pub
  inspect an archive: airlock inspect /media/usb/airlock
  registry to registry, and what a mirror lacks: airlock copy, airlock diff

Registries on loopback (127.0.0.0/8, ::1, localhost) are reached over plain HTTP; any other host only
with --plain-http HOST, or over TLS (add a CA with --ca-file). Credentials come from docker's
config.json and its credential helpers (docker login).

Exit status: 0 all done; 1 some images not done, or a check failed (a refusal by the target registry,
a refused tag move, verification, diff, integrity), with the others done and reported; 2 usage, or
nothing could be done (target unreachable, credentials refused, unreadable archive, no trust pinned).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// The shared flags are checked once, before any command runs.
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.validate() },
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.plainHTTP, "plain-http", nil, "reach this registry host over plain HTTP (repeatable)")
	pf.StringSliceVar(&g.tls, "tls", nil, "reach this registry host over TLS even on loopback (repeatable)")
	pf.StringSliceVar(&g.tokenRealms, "token-realm", nil, "trust this token service (HOST or HOST:PORT) on a loopback or private address with registry credentials, though not on the registry's own host and port (repeatable)")
	pf.StringVar(&g.caFile, "ca-file", "", "PEM file of extra certificate authorities for registry TLS")
	pf.StringVar(&g.format, "format", "text", "output format: text or json")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log each step to stderr")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress bars or logs, only errors and the result")
	pf.IntVar(&g.concurrency, "concurrency", 8, "how many images and blobs to move at once")
	pf.DurationVar(&g.stall, "stall-timeout", registry.DefaultRetry.StallTimeout, "cut any transfer (blob, manifest, tag list) that moved no byte for this long, and retry it")
	pf.IntVar(&g.attempts, "attempts", registry.DefaultRetry.Attempts, "tries of each transfer before giving up (backoff with jitter between tries)")
	root.AddCommand(newSaveCmd(g), newLoadCmd(g), newCopyCmd(g), newDiffCmd(g), newVerifyCmd(g), newInspectCmd(g), newSignCmd(g), newAdmissionCmd(g), newVersionCmd(g))
	return root
}

func (g *globalOptions) validate() error {
	switch g.format {
	case "text", "json":
	default:
		return fmt.Errorf("--format %q: want text or json", g.format)
	}
	if g.concurrency < 1 {
		return fmt.Errorf("--concurrency %d: want 1 or more", g.concurrency)
	}
	return nil
}

// retry returns the retry policy the flags set.
func (g *globalOptions) retry() registry.Retry {
	r := registry.DefaultRetry
	r.StallTimeout = g.stall
	if g.attempts > 0 {
		r.Attempts = g.attempts
	}
	return r
}

// logger returns the logger for stderr: warnings by default, every step with --verbose.
func (g *globalOptions) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	if g.quiet {
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func (g *globalOptions) registries() (*registry.Registries, error) {
	return registry.New(registry.Options{
		PlainHTTP:   g.plainHTTP,
		TLS:         g.tls,
		TokenRealms: g.tokenRealms,
		CAFile:      g.caFile,
		UserAgent:   "airlock/" + version(),
		// Every response, not only blobs, is cut when it stalls (a manifest or a tag list too).
		StallTimeout: g.stall,
		// A request made outside any Retry.Do is retried the same way: --attempts bounds every request.
		Retry: g.retry(),
	})
}

// stderrIsTerminal reports whether progress bars should be drawn.
func (g *globalOptions) stderrIsTerminal() bool {
	return !g.quiet && term.IsTerminal(int(os.Stderr.Fd()))
}

// planOptions are the options for resolving an image set, with a count of images on a terminal.
func (g *globalOptions) planOptions() plan.PlanOptions {
	o := plan.PlanOptions{Concurrency: g.concurrency, Log: g.logger(), Retry: g.retry()}
	if g.stderrIsTerminal() {
		o.Progress = &barProgress{desc: "resolving", count: true}
	}
	return o
}

// out is where results go.
func out(cmd *cobra.Command) io.Writer { return cmd.OutOrStdout() }

// emit writes v as indented JSON with --format json, and what text writes otherwise.
func (g *globalOptions) emit(cmd *cobra.Command, v any, text func(io.Writer) error) error {
	if g.format == "json" {
		enc := json.NewEncoder(out(cmd))
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(out(cmd))
}
