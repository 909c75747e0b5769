package archive

// Tests written from an honest gremlins run over tarwriter.go and tarvolfiles.go (issue 20): the
// slots TarWriter plans (an empty blob is one) and the volumes finish lists when the stream fills its
// last volume exactly. Each was seen failing with the mutant it was written for applied. See
// docs/mutation.md.

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestTarWriterPlansEmptyBlob: an empty blob gets a slot like any other; a duplicate, an invalid
// digest and a negative size do not.
func TestTarWriterPlansEmptyBlob(t *testing.T) {
	empty := ocispec.Descriptor{Digest: digest.FromBytes(nil), Size: 0}
	one := ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1}
	w := &TarWriter{vf: &volumeFiles{base: "a.tar"}, byName: map[digest.Digest]int{}}
	content := []ocispec.Descriptor{empty, one, empty, {Digest: "sha256:nothex", Size: 1}, {Digest: digest.FromString("y"), Size: -1}}
	if err := w.plan([]byte("{}"), content); err != nil {
		t.Fatal(err)
	}
	var got []digest.Digest
	for _, s := range w.slots[1:] {
		got = append(got, s.desc.Digest)
	}
	if !slices.Equal(got, []digest.Digest{empty.Digest, one.Digest}) || w.byName[empty.Digest] != 1 || w.byName[one.Digest] != 2 {
		t.Fatalf("slots after oci-layout %v, byName %v; want the empty blob, then x", got, w.byName)
	}
	// The empty blob's entry is its header alone; the next starts right after.
	if s := w.slots[1]; s.next != s.data || w.slots[2].off != s.next {
		t.Fatalf("empty blob's slot %+v, next slot at %d", s, w.slots[2].off)
	}
}

// TestVolumeFilesFinishExactFill: a stream that fills its last volume exactly makes no empty volume
// after it; one byte more makes a volume of one byte.
func TestVolumeFilesFinishExactFill(t *testing.T) {
	for _, c := range []struct {
		total int64
		sizes []int64
	}{
		{8, []int64{4, 4}},
		{9, []int64{4, 4, 1}},
		{7, []int64{4, 3}},
	} {
		v := &volumeFiles{base: filepath.Join(t.TempDir(), "a.tar"), size: 4}
		if err := v.WriteAt(make([]byte, c.total), 0); err != nil {
			t.Fatal(err)
		}
		vols, err := v.finish(c.total, false)
		if err != nil {
			t.Fatalf("%d bytes: %v", c.total, err)
		}
		var sizes []int64
		for i, vol := range vols {
			sizes = append(sizes, vol.Size)
			if fi, err := os.Stat(v.final(i)); err != nil || fi.Size() != vol.Size {
				t.Errorf("%d bytes: volume %s: %v, %v", c.total, vol.Name, fi, err)
			}
		}
		if !slices.Equal(sizes, c.sizes) {
			t.Errorf("%d bytes in volumes of 4: sizes %v, want %v", c.total, sizes, c.sizes)
		}
	}
}
