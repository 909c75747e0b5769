package registries

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"airlock.dev/airlock/e2e/internal/tools"
)

// distributionConfig is the registry's configuration: filesystem storage, delete left
// disabled (the default), no log noise.
const distributionConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`

// DistributionOptions change the registry's stock configuration.
type DistributionOptions struct {
	// IndexPlatforms is validation.manifests.indexes.platforms: "all" (distribution's default: every
	// manifest an index lists must be in the repository, so a sparse index is refused), "none" (an
	// index is taken whatever it lists) or "list" (with a platformlist; not offered here). Empty
	// leaves the setting out.
	IndexPlatforms string
}

// config adds the options' settings to the plain configuration.
func (o DistributionOptions) config(storage, host string) string {
	c := fmt.Sprintf(distributionConfig, storage, host)
	if o.IndexPlatforms != "" {
		c += fmt.Sprintf("validation:\n  manifests:\n    indexes:\n      platforms: %s\n", o.IndexPlatforms)
	}
	return c
}

// StartDistributionWith is StartDistribution with opts changing the stock configuration.
func StartDistributionWith(ctx context.Context, t testing.TB, opts DistributionOptions) string {
	t.Helper()
	return startForTest(t, func(bin, dir string) (string, func(), error) {
		return startProcess(ctx, bin, dir, opts.config, waitReady)
	})
}

// startForTest starts a distribution process with start in a test temp directory, fails the test
// when it cannot, stops it when the test ends, and logs its log when the test failed.
func startForTest(t testing.TB, start func(bin, dir string) (string, func(), error)) string {
	t.Helper()
	bin := tools.Path(t, "registry")
	dir := t.TempDir()
	host, stop, err := start(bin, dir)
	if err != nil {
		t.Fatalf("start distribution registry: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("distribution registry %s log:\n%s", host, tail(filepath.Join(dir, "registry.log")))
		}
	})
	return host
}

// StartDistribution starts the distribution registry (the `registry` binary from
// distribution v3) on a free loopback port with its storage in a test temp directory,
// waits until it answers, and stops it when the test ends. It returns host:port.
// A missing binary skips the test, or fails it when CI=true.
func StartDistribution(ctx context.Context, t testing.TB) string {
	t.Helper()
	return startForTest(t, func(bin, dir string) (string, func(), error) { return startDistribution(ctx, bin, dir) })
}

// StartDistributionProcess starts the distribution registry found by tools.Find on a
// free loopback port, keeping its configuration, log and storage in dir. It returns
// host:port once GET /v2/ answers, and a stop function that ends the process. ctx bounds
// only the start, not the life of the registry.
func StartDistributionProcess(ctx context.Context, dir string) (host string, stop func(), err error) {
	bin, err := tools.Find("registry")
	if err != nil {
		return "", nil, err
	}
	return startDistribution(ctx, bin, dir)
}

// startDistribution starts bin with the plain configuration, retrying with a new port when the one
// picked was taken in the meantime.
func startDistribution(ctx context.Context, bin, dir string) (string, func(), error) {
	return startProcess(ctx, bin, dir, func(storage, host string) string {
		return fmt.Sprintf(distributionConfig, storage, host)
	}, waitReady)
}

// startProcess runs `bin serve CONFIG` with the configuration config(storage, host) writes, on a free
// port, until ready(host) says it answers; a port taken in the meantime is tried again, up to three
// times.
func startProcess(ctx context.Context, bin, dir string, config func(storage, host string) string,
	ready func(ctx context.Context, host string, exited <-chan struct{}) error) (string, func(), error) {
	var lastErr error
	for range 3 {
		host, stop, err := startOnce(ctx, bin, dir, config, ready)
		if err == nil {
			return host, stop, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return "", nil, lastErr
}

func startOnce(ctx context.Context, bin, dir string, configFor func(storage, host string) string,
	ready func(ctx context.Context, host string, exited <-chan struct{}) error) (string, func(), error) {
	host, err := freeAddr(ctx)
	if err != nil {
		return "", nil, err
	}
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return "", nil, err
	}
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(configFor(storage, host)), 0o644); err != nil {
		return "", nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// No tracing exporter: distribution v3 would otherwise try to reach a collector.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if err := ready(ctx, host, exited); err != nil {
		stop()
		return "", nil, fmt.Errorf("distribution registry on %s: %w; log %s:\n%s", host, err, logPath, tail(logPath))
	}
	return host, stop, nil
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls GET /v2/ on host until it answers 200, the process exits, ctx ends or
// 20 seconds pass.
func waitReady(ctx context.Context, host string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited before answering GET /v2/")
		case <-ctx.Done():
			return fmt.Errorf("no answer to GET /v2/: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last few KiB of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}
