package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHashBlobs is what load runs on a directory archive before any push: every blob named is hashed,
// a flipped byte in one is found with its digest and the image it belongs to, and blobs found right
// are not read again.
func TestHashBlobs(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	_, descs := writeSample(t, dir)
	const img = "registry.example.com/team/app:1.4.2"
	blobs := []OwnedBlob{{descs[0], img}, {descs[1], img}, {descs[1], "registry.example.com/team/api:2.0"}}

	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := HashBlobs(ctx, r, blobs); err != nil {
		t.Fatalf("intact archive: %v", err)
	}
	if !r.isChecked(descs[1].Digest) {
		t.Error("a blob found right is not recorded as checked")
	}
	r.Close()

	flipByte(t, BlobPath(dir, descs[1].Digest), 1234)
	r, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = HashBlobs(ctx, r, blobs)
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Digest != descs[1].Digest || len(ce.Images) != 2 || !strings.Contains(err.Error(), "does not hash to its name") {
		t.Fatalf("flipped byte in a layer: %v (%+v); want a CheckError naming %s and both images", err, ce, descs[1].Digest)
	}
}

func flipByte(t *testing.T, p string, off int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[off%len(b)] ^= 0x01
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
