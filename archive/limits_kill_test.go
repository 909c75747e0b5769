package archive

// Tests written from an honest gremlins run over archive (issue 20): the size limits of ReadVerified,
// readLimited and hashOne, each at the limit and one past it, and ctxReader. Each was seen failing
// with the mutant it was written for applied. See docs/mutation.md.

import (
	"bytes"
	"context"
	_ "crypto/sha512" // digest.SHA512, for hashOne's other-algorithm path
	"errors"
	"io"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bytesFetcher serves b whatever is asked.
type bytesFetcher []byte

func (b bytesFetcher) Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b)), nil
}

// TestReadVerifiedLimits: a blob of exactly max bytes is read, whether its descriptor gives its size
// or not; one byte more is refused, by the descriptor's size before fetching, or by counting.
func TestReadVerifiedLimits(t *testing.T) {
	ctx := context.Background()
	const max = 8
	b := []byte("12345678")
	d := digest.FromBytes(b)
	for _, size := range []int64{max, 0} {
		got, err := ReadVerified(ctx, bytesFetcher(b), ocispec.Descriptor{Digest: d, Size: size}, max)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("size %d, %d bytes, max %d: got %q, %v; want the bytes", size, len(b), max, got, err)
		}
	}
	// One byte more, the descriptor saying so: refused before fetching.
	long := append(b, '9')
	ld := digest.FromBytes(long)
	_, err := ReadVerified(ctx, bytesFetcher(long), ocispec.Descriptor{Digest: ld, Size: max + 1}, max)
	wantMsg(t, err, ld.String()+": 9 bytes is more than the 8 allowed here")
	// One byte more, the descriptor giving no size: refused by counting.
	_, err = ReadVerified(ctx, bytesFetcher(long), ocispec.Descriptor{Digest: ld}, max)
	wantMsg(t, err, ld.String()+": more than the 8 bytes allowed here")
}

// TestReadVerifiedSize: a descriptor's size must be the content's; a descriptor of size 0 gives none.
func TestReadVerifiedSize(t *testing.T) {
	ctx := context.Background()
	b := []byte("abc")
	d := digest.FromBytes(b)
	_, err := ReadVerified(ctx, bytesFetcher(b), ocispec.Descriptor{Digest: d, Size: 4}, 100)
	wantMsg(t, err, d.String()+": 3 bytes, the descriptor says 4: the content is damaged or was altered")
	_, err = ReadVerified(ctx, bytesFetcher(b), ocispec.Descriptor{Digest: d, Size: 2}, 100)
	wantMsg(t, err, d.String()+": 3 bytes, the descriptor says 2")
	// The digest is then all that is checked.
	got, err := ReadVerified(ctx, bytesFetcher(b), ocispec.Descriptor{Digest: d, Size: 0}, 100)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("size 0: got %q, %v", got, err)
	}
	var dm *DigestMismatchError
	if _, err := ReadVerified(ctx, bytesFetcher(b), ocispec.Descriptor{Digest: digest.FromString("other")}, 100); !errors.As(err, &dm) || dm.Actual != d {
		t.Fatalf("wrong digest: got %v", err)
	}
}

// TestReadLimited: a file of exactly max bytes is read whole; one of max+1 is refused.
func TestReadLimited(t *testing.T) {
	fsys := fstest.MapFS{"at": {Data: []byte("12345")}, "past": {Data: []byte("123456")}}
	b, err := readLimited(fsys, "at", 5)
	if err != nil || string(b) != "12345" {
		t.Fatalf("5 bytes, max 5: got %q, %v", b, err)
	}
	b, err = readLimited(fsys, "past", 5)
	wantMsg(t, err, "past is more than 5 bytes, over the limit: refused")
	if b != nil {
		t.Fatalf("refused, yet returned %q", b)
	}
}

// memReader is a Reader over files in memory.
func memReader(files fstest.MapFS) *Reader { return &Reader{Path: "mem", fsys: files} }

// TestHashOneReads: hashOne reads a blob to its end, however many reads that takes (here, a buffer of
// 4 bytes for 10), an empty one included, and hashes sha512 blobs with sha512.
func TestHashOneReads(t *testing.T) {
	ctx := context.Background()
	noOwners := func(digest.Digest) []string { return nil }
	files := fstest.MapFS{}
	put := func(alg digest.Algorithm, b []byte) hashJob {
		d := alg.FromBytes(b)
		files[blobName(d)] = &fstest.MapFile{Data: b}
		return hashJob{d: d, size: int64(len(b)), what: "blob"}
	}
	jobs := []hashJob{
		put(digest.SHA256, []byte("0123456789")),
		put(digest.SHA256, nil),
		put(digest.SHA512, []byte("0123456789")),
	}
	r := memReader(files)
	for _, j := range jobs {
		if err := hashOne(ctx, r, j, make([]byte, 4), noOwners); err != nil {
			t.Errorf("%s (%d bytes): %v", j.d, j.size, err)
		}
	}
	// Cut short: the size it read is reported.
	j := jobs[0]
	j.size = 11
	wantMsg(t, hashOne(ctx, r, j, make([]byte, 4), noOwners), "is 10 bytes, its descriptor says 11")
	j.size = 9
	wantMsg(t, hashOne(ctx, r, j, make([]byte, 4), noOwners), "holds more than the 9 bytes its descriptor says")
	// An empty blob against a descriptor of no size at all (-1): it is 0 bytes, not more than -1.
	j = jobs[1]
	j.size = -1
	wantMsg(t, hashOne(ctx, r, j, make([]byte, 4), noOwners), "is 0 bytes, its descriptor says -1")
}

// TestCtxReader: ctxReader reads while its context lasts, and returns the context's error after.
func TestCtxReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ctxReader{ctx: ctx, r: strings.NewReader("abc")}
	p := make([]byte, 8)
	if n, err := r.Read(p); n != 3 || err != nil || string(p[:n]) != "abc" {
		t.Fatalf("got %d, %v, want 3 bytes", n, err)
	}
	cancel()
	r = ctxReader{ctx: ctx, r: strings.NewReader("abc")}
	if n, err := r.Read(p); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: got %d, %v, want 0, context.Canceled", n, err)
	}
}
