package archive

// Tests written from an honest gremlins run over layout.go and multireader.go (issue 20): what
// PushResumable does with a partial file that already holds the whole blob or a source that sends
// too much, the copy buffers it sizes, and multiReaderAt at its ends. Each was seen failing with the
// mutant it was written for applied. See docs/mutation.md.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushResumableWith writes partial as the blob's .partial file, then runs PushResumable with a source
// that serves src[off:]; it returns what PushResumable returned and the offset asked (-1: not asked).
func pushResumableWith(t *testing.T, partial, src []byte, size int) (*Layout, string, int64, int64, error) {
	t.Helper()
	dir := t.TempDir()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{Digest: digest.FromBytes(src[:size]), Size: int64(size)}
	p := filepath.Join(dir, ingestDir, desc.Digest.Encoded()+".partial")
	if err := os.WriteFile(p, partial, 0o644); err != nil {
		t.Fatal(err)
	}
	from := int64(-1)
	got, err := l.PushResumable(context.Background(), desc, func(off int64) (io.ReadCloser, error) {
		from = off
		return io.NopCloser(bytes.NewReader(src[off:])), nil
	})
	return l, dir, from, got, err
}

// TestPushResumableCompletePartial: a partial file that holds the whole blob (an earlier run stopped
// before renaming it) is hashed and kept: nothing is asked of the source, and the blob, hashed as it
// was read, is recorded as verified.
func TestPushResumableCompletePartial(t *testing.T) {
	b := []byte("the whole blob, already here")
	l, dir, from, got, err := pushResumableWith(t, b, b, len(b))
	if err != nil || from != -1 || got != 0 {
		t.Fatalf("asked from %d, got %d bytes, %v; want nothing asked, 0 bytes, no error", from, got, err)
	}
	d := digest.FromBytes(b)
	fi, err := os.Lstat(BlobPath(dir, d))
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := os.ReadFile(BlobPath(dir, d)); !bytes.Equal(stored, b) {
		t.Fatalf("stored %q", stored)
	}
	if !l.verified.trusted(d, fi) {
		t.Fatal("the blob hashed as it was written is not recorded as verified")
	}
}

// TestPushResumableSourceSendsMore: after a partial file of 4 bytes, a source that sends 2 bytes more
// than the blob's rest is read one byte past it, no further, and refused as the wrong size (the size
// counting the partial file's bytes).
func TestPushResumableSourceSendsMore(t *testing.T) {
	b := []byte("0123456789xx")
	_, dir, from, got, err := pushResumableWith(t, b[:4], b, 10)
	var sb *ShortBlobError
	if !errors.As(err, &sb) || sb.Got != 11 || sb.Size != 10 || from != 4 || got != 7 {
		t.Fatalf("asked from %d, got %d bytes, %v (%+v); want from 4, 7 bytes, a ShortBlobError of 11 bytes for 10", from, got, err, sb)
	}
	if _, err := os.Stat(filepath.Join(dir, ingestDir, digest.FromBytes(b[:10]).Encoded()+".partial")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial file of a wrong blob is kept: %v", err)
	}
}

// TestCopyBuffer: a blob under half a megabyte gets a buffer one byte larger than itself (512 bytes
// at least), not pooled; one of half a megabyte or more, or of unknown size, the pooled megabyte.
func TestCopyBuffer(t *testing.T) {
	for _, c := range []struct {
		size   int64
		len    int
		pooled bool
	}{
		{-1, copyBufferSize, true},
		{0, 512, false},
		{511, 512, false},
		{1000, 1001, false},
		{copyBufferSize/2 - 1, copyBufferSize / 2, false},
		{copyBufferSize / 2, copyBufferSize, true},
	} {
		b := copyBuffer(c.size)
		if len(b.b) != c.len || (b.pool != nil) != c.pooled {
			t.Errorf("size %d: a buffer of %d bytes, pooled %v; want %d, pooled %v", c.size, len(b.b), b.pool != nil, c.len, c.pooled)
		}
		b.free()
		// What free returned to the pool (nothing, for a buffer not from it) serves the next.
		if n := copyBuffer(-1); len(n.b) != copyBufferSize {
			t.Fatalf("after freeing a buffer for size %d: the pool served %d bytes", c.size, len(n.b))
		}
	}
}

// eofAtEnd is a part whose ReadAt returns io.EOF with the last bytes (as io.ReaderAt allows), or
// err, when set, with whatever it read.
type eofAtEnd struct {
	b   []byte
	err error
}

func (e eofAtEnd) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(e.b).ReadAt(p, off)
	if e.err != nil {
		return n, e.err
	}
	if err == nil && off+int64(n) == int64(len(e.b)) {
		err = io.EOF
	}
	return n, err
}

// TestMultiReaderAtEnds: a read goes on past a part that says io.EOF with its last bytes, stops with
// io.EOF at the stream's end (or at once on an empty stream), and returns a part's other errors.
func TestMultiReaderAtEnds(t *testing.T) {
	m := newMultiReaderAt([]readerAtSize{{eofAtEnd{b: []byte("abc")}, 3}, {eofAtEnd{b: []byte("def")}, 3}})
	p := make([]byte, 6)
	if n, err := m.ReadAt(p, 0); n != 6 || err != nil || string(p) != "abcdef" {
		t.Errorf("whole stream: %d, %v, %q; want 6, nil, abcdef", n, err, p[:n])
	}
	p = make([]byte, 4)
	if n, err := m.ReadAt(p, 4); n != 2 || err != io.EOF || string(p[:n]) != "ef" {
		t.Errorf("past the end: %d, %v, %q; want 2, EOF, ef", n, err, p[:n])
	}
	if n, err := m.ReadAt(p, 6); n != 0 || err != io.EOF {
		t.Errorf("at the end: %d, %v; want 0, EOF", n, err)
	}
	if n, err := newMultiReaderAt(nil).ReadAt(p, 0); n != 0 || err != io.EOF {
		t.Errorf("empty: %d, %v; want 0, EOF", n, err)
	}
	broken := errors.New("broken volume")
	m = newMultiReaderAt([]readerAtSize{{eofAtEnd{b: []byte("abc"), err: broken}, 3}, {eofAtEnd{b: []byte("def")}, 3}})
	if n, err := m.ReadAt(make([]byte, 6), 0); n != 3 || err != broken {
		t.Errorf("a part failing: %d, %v; want 3, %v", n, err, broken)
	}
}

// TestMultiReaderAtVolumeAt: the volume holding each byte, the first and last of each volume included;
// an offset outside the volumes listed is named by number.
func TestMultiReaderAtVolumeAt(t *testing.T) {
	m := newMultiReaderAt([]readerAtSize{{bytes.NewReader(make([]byte, 3)), 3}, {bytes.NewReader(make([]byte, 3)), 3}})
	vols := []Volume{{Name: "a.tar.000"}, {Name: "a.tar.001"}}
	for off, want := range map[int64]string{-1: "(byte -1 of 6)", 0: "a.tar.000", 2: "a.tar.000", 3: "a.tar.001", 5: "a.tar.001"} {
		if got := m.volumeAt(vols, off); got != want {
			t.Errorf("byte %d: %q, want %q", off, got, want)
		}
	}
	// One volume listed for two parts.
	for off, want := range map[int64]string{0: "a.tar.000", 2: "a.tar.000", 3: "(byte 3 of 6)"} {
		if got := m.volumeAt(vols[:1], off); got != want {
			t.Errorf("one volume listed, byte %d: %q, want %q", off, got, want)
		}
	}
}
