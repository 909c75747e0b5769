package mirror

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rangeSource is a source that answers Range reads and records them.
type rangeSource struct{ ranged []int64 }

func (s *rangeSource) Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("0123456789")), nil
}
func (s *rangeSource) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, nil
}
func (s *rangeSource) FetchFrom(_ context.Context, _ ocispec.Descriptor, off int64) (io.ReadCloser, error) {
	s.ranged = append(s.ranged, off)
	return io.NopCloser(strings.NewReader("0123456789"[off:])), nil
}

// TestWithBlobsKeepsRangeReads: wrapping a plan's source for the site's new blobs keeps its Range
// reads for the source's own blobs (a resumed upload in copy --sign-key reads only the rest), and
// serves a made blob from its offset too.
func TestWithBlobsKeepsRangeReads(t *testing.T) {
	src := &rangeSource{}
	made := []byte("site signature")
	s := withBlobs{src, map[digest.Digest][]byte{digest.FromBytes(made): made}}
	rc, err := s.FetchFrom(context.Background(), ocispec.Descriptor{Digest: digest.FromString("upstream")}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "456789" || len(src.ranged) != 1 || src.ranged[0] != 4 {
		t.Errorf("source blob from 4: %q, Range reads %v", b, src.ranged)
	}
	rc, err = s.FetchFrom(context.Background(), ocispec.Descriptor{Digest: digest.FromBytes(made)}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "signature" || len(src.ranged) != 1 {
		t.Errorf("made blob from 5: %q, Range reads %v", b, src.ranged)
	}
}
