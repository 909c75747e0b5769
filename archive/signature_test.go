package archive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestSignArchive signs a directory and the same archive as tar volumes: the signature is attached to
// the catalog, index.json still agrees with the catalog, and every blob reads back, checked against its
// digest.
func TestSignArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	cat, descs := writeSample(t, layout)
	base := filepath.Join(dir, "out", "airlock.tar")
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	before, err := WriteTar(ctx, layout, base, 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(dir, "single.tar")
	if _, err := WriteTar(ctx, layout, single, 0); err != nil {
		t.Fatal(err)
	}
	bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	for _, p := range []string{layout, base + ".000", single} {
		var signed ocispec.Descriptor
		desc, err := Sign(ctx, p, func(d ocispec.Descriptor) ([]byte, error) { signed = d; return bundle, nil })
		if err != nil {
			t.Fatalf("Sign(%s): %v", filepath.Base(p), err)
		}
		r, err := Open(ctx, p)
		if err != nil {
			t.Fatalf("open %s after signing: %v", filepath.Base(p), err)
		}
		got, catDesc, err := r.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if catDesc.Digest != signed.Digest || got.Created != cat.Created {
			t.Errorf("%s: signed %s, the catalog is %s", filepath.Base(p), signed.Digest, catDesc.Digest)
		}
		sigs, err := r.CatalogSignatures(ctx, catDesc.Digest)
		if err != nil || len(sigs) != 1 || sigs[0].Manifest.Digest != desc.Digest || string(sigs[0].Bundle) != string(bundle) {
			t.Fatalf("%s: signatures %+v, %v; want the one bundle attached as %s", filepath.Base(p), sigs, err, desc.Digest)
		}
		// index.json still agrees with the catalog, the signature entry included.
		if err := checkIndex(r, got); err != nil {
			t.Errorf("%s after signing: %v", filepath.Base(p), err)
		}
		readBack(t, r, descs)
		r.Close()
	}
	after, err := readVolumeList(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) < len(before) || after[0].Name != "airlock.tar.000" {
		t.Errorf("volumes before %v, after %v", before, after)
	}
	if !hasSums(after) {
		t.Errorf("signing dropped the sums of a list written with them: %v", after)
	}
	// A list of sizes (save's default) stays one.
	sized := filepath.Join(dir, "sized.tar")
	if _, err := writeTar(ctx, layout, sized, 16<<10, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(ctx, sized+".000", func(ocispec.Descriptor) ([]byte, error) { return bundle, nil }); err != nil {
		t.Fatal(err)
	}
	if vols, err := readVolumeList(sized); err != nil || hasSums(vols) || vols[0].Size == 0 {
		t.Errorf("a list of sizes after signing: %v, %v", vols, err)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(base), after[0].Name)); err != nil || fi.Size() != before[0].Size {
		t.Errorf("the first volume is %v bytes (%v), want the volume size kept (%d)", fi.Size(), err, before[0].Size)
	}
	// A second signature (another key, say) is added next to the first.
	if _, err := Sign(ctx, base, func(ocispec.Descriptor) ([]byte, error) { return []byte(`{"second":true}`), nil }); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, catDesc, _ := r.Catalog(ctx)
	if sigs, err := r.CatalogSignatures(ctx, catDesc.Digest); err != nil || len(sigs) != 2 {
		t.Errorf("after a second signature: %d signatures, %v", len(sigs), err)
	}
}
