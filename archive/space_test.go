package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPushDiskFull writes a blob where every write fails with ENOSPC (/dev/full stands in for the
// partial file): the error is a LocalWriteError naming the path and how much was still to write, and
// it is marked permanent, so no retry loop waits on a full disk.
func TestPushDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	dir := t.TempDir()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, desc := blob(t, 3<<20)
	partial := filepath.Join(dir, ingestDir, desc.Digest.Encoded()+".partial")
	if err := os.Symlink("/dev/full", partial); err != nil {
		t.Fatal(err)
	}
	err = l.Push(context.Background(), desc, bytes.NewReader(b))
	var lw *LocalWriteError
	if !errors.As(err, &lw) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v (%T), want a LocalWriteError for ENOSPC", err, err)
	}
	if lw.Path != partial || lw.Need <= 0 || lw.Need > desc.Size || !lw.Permanent() {
		t.Errorf("LocalWriteError %+v: want the partial path, 0 < need <= %d, permanent", lw, desc.Size)
	}
	if msg := err.Error(); !strings.Contains(msg, "the disk is full") || !strings.Contains(msg, "more needed") || !strings.Contains(msg, partial) {
		t.Errorf("message: %s", msg)
	}
}

func TestCheckSpace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet", "made")
	free, err := FreeSpace(dir)
	if err != nil {
		t.Skipf("free space unknown here: %v", err)
	}
	if err := CheckSpace(dir, 1); err != nil {
		t.Errorf("1 byte: %v", err)
	}
	err = CheckSpace(dir, free+1<<40)
	var se *SpaceError
	if !errors.As(err, &se) || se.Free <= 0 || se.Need != free+1<<40 || !strings.Contains(err.Error(), "nothing written") {
		t.Errorf("more than the disk holds: %v", err)
	}
}
