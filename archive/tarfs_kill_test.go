package archive

// Tests written from an honest gremlins run (issue 20) over the tar reader, volumeFiles (tarvolfiles.go)
// and the verified-blob record (verified.go). Each was seen failing with the mutant it was written for
// applied. See docs/mutation.md.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestCheckTarEndLooksOnlyAtTheStream: checkTarEnd reads the stream from off up to size and no
// further: bytes past size (here, after a short end marker) are not the stream's.
func TestCheckTarEndLooksOnlyAtTheStream(t *testing.T) {
	b := append(make([]byte, 100), 'x')
	for _, c := range []struct {
		off, size int64
		want      string
	}{
		{60, 100, ""},
		{100, 100, ""},
		{60, 101, "the end-of-archive marker is not where the last entry ends (byte 60): entries overlap"},
		{102, 101, "the last entry runs 1 bytes past the end of the 101-byte stream"},
	} {
		if got := checkTarEnd(bytes.NewReader(b), c.off, c.size); got != c.want {
			t.Errorf("off %d, size %d: %q, want %q", c.off, c.size, got, c.want)
		}
	}
}

// TestVolumeFilesSpan: span cuts [off, off+n) at volume boundaries, each piece once, and stops at the
// end (a callback that is called too often fails the test at once rather than looping without end).
func TestVolumeFilesSpan(t *testing.T) {
	type piece struct{ i, local, from, to int64 }
	for _, c := range []struct {
		size, off, n int64
		want         []piece
	}{
		{4, 2, 7, []piece{{0, 2, 0, 2}, {1, 0, 2, 6}, {2, 0, 6, 7}}},
		{4, 4, 4, []piece{{1, 0, 0, 4}}},
		{4, 3, 0, nil},
		{0, 5, 7, []piece{{0, 5, 0, 7}}},
	} {
		var got []piece
		v := &volumeFiles{base: "a.tar", size: c.size}
		err := v.span(c.off, c.n, func(i int, local, from, to int64) error {
			got = append(got, piece{int64(i), local, from, to})
			if len(got) > len(c.want) {
				return fmt.Errorf("called %d times", len(got))
			}
			return nil
		})
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("volume size %d, [%d, +%d): %v, %v; want %v", c.size, c.off, c.n, got, err, c.want)
		}
	}
}

// TestVolumeFilesReadPastWritten: reading more of the stream than was written into a volume says so.
func TestVolumeFilesReadPastWritten(t *testing.T) {
	v := &volumeFiles{base: filepath.Join(t.TempDir(), "a.tar"), size: 8}
	defer v.closeAll()
	if err := v.WriteAt([]byte("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	if err := v.ReadAt(p, 0); err != nil || string(p) != "0123456789" {
		t.Fatalf("read back %q, %v", p, err)
	}
	err := v.ReadAt(make([]byte, 4), 8)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "a.tar.001.partial: shorter than the stream written into it") {
		t.Fatalf("reading past what volume 1 holds: %v", err)
	}
}

// TestVolumeFilesTruncateOneFile: a stream in one file (volume size 0) is NAME.tar.partial, which
// partials lists and truncate cuts back.
func TestVolumeFilesTruncateOneFile(t *testing.T) {
	v := &volumeFiles{base: filepath.Join(t.TempDir(), "a.tar")}
	if got := v.partials(); len(got) != 0 {
		t.Fatalf("nothing written, partials %v", got)
	}
	if err := v.WriteAt([]byte("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	if got := v.partials(); len(got) != 1 || got[0] != v.base+".partial" {
		t.Fatalf("partials %v, want [%s.partial]", got, v.base)
	}
	if err := v.truncate(4); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(v.base + ".partial"); err != nil || string(b) != "0123" {
		t.Fatalf("after truncate(4): %q, %v", b, err)
	}
}

// TestVerifiedStateFileFollowsSymlinks: a layout named through a symbolic link keeps its record under
// its real path: the same file as when it is named directly.
func TestVerifiedStateFileFollowsSymlinks(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "layout")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	fileReal, absReal := verifiedStateFile(real)
	fileLink, absLink := verifiedStateFile(link)
	if absReal != real || absLink != real || fileLink != fileReal {
		t.Fatalf("through the link: %s, %s; directly: %s, %s; want both %s", fileLink, absLink, fileReal, absReal, real)
	}
}

// TestVerifiedSaveOnlyWhenChanged: save writes the record when it changed, and not again until it
// changes (here: the record, deleted after the first save, is not written back by a second).
func TestVerifiedSaveOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "blob")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	s := loadVerified(dir)
	if s.file == "" {
		t.Skip("no cache directory here")
	}
	s.record(digest.FromString("x"), fi)
	s.save(dir)
	if _, err := os.Stat(s.file); err != nil {
		t.Fatalf("record not written: %v", err)
	}
	if err := os.Remove(s.file); err != nil {
		t.Fatal(err)
	}
	s.save(dir)
	if _, err := os.Stat(s.file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("saved again with nothing changed: %v", err)
	}
}
