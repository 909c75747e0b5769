package archive

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenIndexHashesNothingUpFront: a tar archive with a flipped byte in a blob is refused by Open
// (every blob hashed as the volumes are indexed), while OpenIndex, for inspect, reads its index and
// catalog without hashing; the damaged blob still fails when it is read.
func TestOpenIndexHashesNothingUpFront(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	_, descs := writeSample(t, layout)
	damagedBlob := descs[1] // 70000 bytes, the second blob
	p := BlobPath(layout, damagedBlob.Digest)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[1000] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "airlock.tar")
	if _, err := writeTar(ctx, layout, base, 32<<10, false); err != nil {
		t.Fatal(err)
	}
	if r, err := Open(ctx, base+".000"); err == nil || !strings.Contains(err.Error(), damagedBlob.Digest.String()) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("Open of the damaged tar: %v, want the damaged blob named", err)
	}
	r, err := OpenIndex(ctx, base+".000")
	if err != nil {
		t.Fatalf("OpenIndex: %v", err)
	}
	defer r.Close()
	if cat, _, err := r.Catalog(ctx); err != nil || len(cat.Images) != 1 {
		t.Fatalf("catalog through OpenIndex: %+v, %v", cat, err)
	}
	for _, d := range descs {
		if r.isChecked(d.Digest) {
			t.Errorf("OpenIndex marked %s checked without hashing it", d.Digest)
		}
	}
	rc, err := r.Fetch(ctx, damagedBlob)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if err == nil {
		t.Errorf("the damaged blob read through OpenIndex without an error")
	}
}
