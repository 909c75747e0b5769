//go:build unix

package archive

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFIFOVolumeRefused: a volume, or the volume list, that is a FIFO is refused by name, at once:
// nothing blocks waiting for a writer.
func TestFIFOVolumeRefused(t *testing.T) {
	for _, c := range []struct{ name, open, fifo, want string }{
		{"FIFO volume", ".000", ".001", "volume a.tar.001 is a FIFO: refused"},
		{"FIFO first volume, named", ".000", ".000", "a.tar.000 is a FIFO: refused"},
		{"FIFO volume list", ".000", ".sha256", "a.tar.sha256 is a FIFO: refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base, _ := writeVolumes(t, dir, 4096)
			p := base + c.fifo
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			done := make(chan error, 1)
			go func() {
				r, err := Open(context.Background(), base+c.open)
				if err == nil {
					r.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Open: %v, want %q", err, c.want)
				}
			case <-time.After(10 * time.Second):
				// Unblock the open by writing to the FIFO, so the test ends.
				if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				t.Fatal("Open blocked on a FIFO")
			}
		})
	}
}

// TestOpenRegularRefusesFIFO: openRegular refuses a FIFO without blocking.
func TestOpenRegularRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if f, err := openRegular(p, "volume fifo", "fix it"); err == nil {
		f.Close()
		t.Fatal("openRegular opened a FIFO")
	} else if !strings.Contains(err.Error(), "volume fifo is a FIFO: refused") {
		t.Errorf("openRegular: %v", err)
	}
}
