package archive

// Tests written from an honest gremlins run over space.go (issue 20): HumanBytes at each unit's
// boundary and one under it, and the disk-full message with and without the bytes still needed and
// the free space. Each was seen failing with the mutant it was written for applied. See
// docs/mutation.md.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestHumanBytesBoundaries(t *testing.T) {
	for n, want := range map[int64]string{
		0:                "0 B",
		1023:             "1023 B",
		1024:             "1.0 KiB",
		1536:             "1.5 KiB",
		1 << 20:          "1.0 MiB",
		3 << 30:          "3.0 GiB",
		1<<40 + 1<<39:    "1.5 TiB",
		1<<62 + 1<<61:    "6.0 EiB",
		1<<63 - 1:        "8.0 EiB",
		5<<50 + 512<<40:  "5.5 PiB",
		1<<30 - 512<<10:  "1023.5 MiB",
		10<<20 + 100<<10: "10.1 MiB",
	} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLocalWriteErrorDiskFull: the disk-full message gives the bytes still needed when known (1 B
// included, 0 left out) and the free space where it can be read.
func TestLocalWriteErrorDiskFull(t *testing.T) {
	dir := t.TempDir()
	full := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	p := filepath.Join(dir, "blob.partial")
	freeNote := regexp.MustCompile(` \([0-9.]+ [KMGTPE]?i?B free\); free space there`)

	msg := (&LocalWriteError{Path: p, Err: full, Need: 1}).Error()
	if !strings.HasPrefix(msg, "write "+p+": the disk is full: 1 B more needed for this blob alone (") || !freeNote.MatchString(msg) {
		t.Errorf("need 1: %q", msg)
	}
	msg = (&LocalWriteError{Path: p, Err: full}).Error()
	if strings.Contains(msg, "more needed") || !strings.HasPrefix(msg, "write "+p+": the disk is full (") || !freeNote.MatchString(msg) {
		t.Errorf("need unknown: %q", msg)
	}
	// Where the free space cannot be read (a path under a regular file), it is not given.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	under := filepath.Join(file, "blob.partial")
	if _, err := FreeSpace(under); err == nil {
		t.Skip("free space of a path under a file is readable here")
	}
	msg = (&LocalWriteError{Path: under, Err: full, Need: 2048}).Error()
	want := "write " + under + ": the disk is full: 2.0 KiB more needed for this blob alone; free space there or write the archive elsewhere, then run again (what was written is kept and resumed)"
	if msg != want {
		t.Errorf("free space unknown:\n got %q\nwant %q", msg, want)
	}
}
