package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"airlock.dev/airlock/e2e/internal/tools"
)

var (
	buildOnce  sync.Once
	airlockBin string
	buildErr   error
)

// airlock returns the path of an airlock binary built from this checkout, once per test run.
func airlock(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := tools.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "airlock-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		airlockBin = filepath.Join(dir, "airlock")
		args := []string{"build", "-o", airlockBin}
		if os.Getenv("AIRLOCK_RACE") != "" {
			args = append(args, "-race") // AIRLOCK_RACE=1 go test ./...: the airlock binary under the race detector
		}
		cmd := exec.Command("go", append(args, "./cmd/airlock")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/airlock: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return airlockBin
}

// result is what one airlock run printed and how it ended.
type result struct {
	stdout, stderr string
	code           int
}

// run runs airlock with args, with an empty docker config so no credentials of the machine are used.
func run(ctx context.Context, t testing.TB, args ...string) result {
	t.Helper()
	return runEnv(ctx, t, nil, args...)
}

// runEnv runs airlock like run, with extra environment variables (DOCKER_CONFIG, PATH) set; later
// entries win.
func runEnv(ctx context.Context, t testing.TB, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, airlock(t), args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+t.TempDir()), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("airlock %v: %v", args, err)
	}
	return res
}

// mustRun runs airlock and fails the test unless it exits 0.
func mustRun(ctx context.Context, t testing.TB, args ...string) result {
	t.Helper()
	res := run(ctx, t, args...)
	if res.code != 0 {
		t.Fatalf("airlock %v: exit %d\nstderr:\n%s\nstdout:\n%s", args, res.code, res.stderr, res.stdout)
	}
	return res
}
