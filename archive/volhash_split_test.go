package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestSplitSpans: the blobs are cut into at most n runs, contiguous and in order, each of about
// total/n bytes, and every blob is in exactly one run.
func TestSplitSpans(t *testing.T) {
	span := func(sizes ...int64) []blobSpan {
		var out []blobSpan
		off := int64(0)
		for i, s := range sizes {
			out = append(out, blobSpan{digest.FromString(fmt.Sprint(i)), off, s})
			off += s + 512
		}
		return out
	}
	for _, c := range []struct {
		sizes []int64
		n     int
		want  []int // the blobs in each run
	}{
		{[]int64{10, 10, 10, 10}, 2, []int{2, 2}},
		{[]int64{30, 10, 10, 10}, 2, []int{1, 3}},
		{[]int64{10, 10, 10, 30}, 2, []int{3, 1}},
		{[]int64{10, 10, 10, 10}, 8, []int{1, 1, 1, 1}},
		{[]int64{10, 10, 10, 10, 10, 10}, 3, []int{2, 2, 2}},
		{[]int64{0, 0, 0, 0}, 2, []int{1, 3}}, // no bytes: still at most n runs
		{[]int64{5}, 2, []int{1}},
		{nil, 2, nil},
	} {
		spans := span(c.sizes...)
		runs := splitSpans(spans, c.n)
		var got []int
		var joined []blobSpan
		for _, r := range runs {
			got = append(got, len(r))
			joined = append(joined, r...)
		}
		if !slices.Equal(got, c.want) || !slices.Equal(joined, spans) {
			t.Errorf("splitSpans(%v, %d): runs of %v blobs, want %v (every blob once, in order)", c.sizes, c.n, got, c.want)
		}
	}
}

// TestHashVolumesInRuns: hashed in runs, every blob of the stream is found right, the first, the
// last and an empty one at the end included, across volume boundaries; and a blob that does not
// hash to its name is found wherever it lies in the stream.
func TestHashVolumesInRuns(t *testing.T) {
	contents := [][]byte{
		bytes.Repeat([]byte("a"), 3<<20+7),
		[]byte("b"),
		bytes.Repeat([]byte("c"), 5<<20),
		bytes.Repeat([]byte("d"), 1<<20),
		{},
	}
	for victim := -1; victim < len(contents); victim++ {
		var stream []byte
		var want []digest.Digest
		for i, b := range contents {
			d := digest.FromBytes(b)
			want = append(want, d)
			if i == victim {
				b = append([]byte("x"), b...)[:len(b)] // same size, other bytes (the empty blob: none)
				if len(b) == 0 {
					d = digest.FromString("not empty") // an empty entry named for other bytes
					want[i] = d
				}
			}
			stream = append(stream, plainFile(blobName(d), b)...)
		}
		stream = append(stream, make([]byte, 1024)...) // the end of a tar stream
		// Volumes of 1 MiB + 3 bytes: chunks and blobs cross their boundaries.
		var parts []readerAtSize
		var vols []Volume
		for off := 0; off < len(stream); off += 1<<20 + 3 {
			p := stream[off:min(off+1<<20+3, len(stream))]
			parts = append(parts, readerAtSize{bytes.NewReader(p), int64(len(p))})
			vols = append(vols, Volume{Name: fmt.Sprintf("a.tar.%03d", len(vols)), Size: int64(len(p))})
		}
		ra := newMultiReaderAt(parts)
		tfs, err := newTarFS(ra)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := hashVolumesAndBlobs(context.Background(), ra, vols, tfs)
		if victim < 0 {
			slices.Sort(ok)
			slices.Sort(want)
			if err != nil || !slices.Equal(ok, want) {
				t.Errorf("undamaged: found right %v, %v; want every blob %v", ok, err, want)
			}
			continue
		}
		if ce := (*CheckError)(nil); !errors.As(err, &ce) || ce.Digest != want[victim] {
			t.Errorf("blob %d damaged: %v; want a CheckError naming %s", victim, err, want[victim])
		}
	}
}
