package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/e2e/internal/registries"
)

// TestSaveRefusesFullDisk saves 2 MiB onto a 256 KiB tmpfs (mounted in a user and mount namespace):
// save refuses before the first byte, with both numbers, exit 2, and writes nothing.
func TestSaveRefusesFullDisk(t *testing.T) {
	ctx := t.Context()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("unshare not found (util-linux)")
		}
		t.Skip("unshare not found")
	}
	src := registries.StartDistribution(ctx, t)
	pushRandomImage(ctx, t, src, "team/big", "v1", 2<<20)
	work := t.TempDir()
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/big:v1\n", src))
	mnt := filepath.Join(work, "small")
	mkdir(t, mnt)
	script := `mount -t tmpfs -o size=256k tmpfs "$1" || exit 99; shift; "$@"; code=$?; ls -A "$0" >&2; exit $code`
	cmd := exec.CommandContext(ctx, unshare, "-rm", "sh", "-c", script, mnt+"/archive", mnt, airlock(t), "save", "-c", set, "-o", mnt+"/archive")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if code == 99 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs in a user namespace here: %s", stderr.String())
		}
		t.Skipf("cannot mount a tmpfs in a user namespace here: %s", stderr.String())
	}
	if code != 2 || !strings.Contains(stderr.String(), "free, and this run needs 2.0 MiB more: nothing written") {
		t.Fatalf("save onto a full disk: exit %d (%v), want 2 naming both numbers\n%s", code, err, stderr.String())
	}
	// The script lists the archive directory last: it must not hold a layout.
	if strings.Contains(stderr.String(), "oci-layout") || strings.Contains(stderr.String(), "blobs") {
		t.Errorf("save wrote into the archive directory before refusing:\n%s", stderr.String())
	}
}
