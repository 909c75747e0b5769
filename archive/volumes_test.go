package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeVolumes saves the check sample as tar volumes a.tar.000, ... of volumeSize bytes in dir.
func writeVolumes(t *testing.T, dir string, volumeSize int64) (string, []Volume) {
	t.Helper()
	writeCheckSample(t, filepath.Join(dir, "layout"))
	base := filepath.Join(dir, "a.tar")
	vols, err := WriteTar(context.Background(), filepath.Join(dir, "layout"), base, volumeSize)
	if err != nil {
		t.Fatal(err)
	}
	return base, vols
}

// TestOpenTellsBadCopyFromHostileTar: a tar stream the tar reader refuses is first checked volume by
// volume against the list, so a bad copy is named as one (the first damaged volume, in order); when
// the volumes match their list (rewritten with them), the stream itself is refused.
func TestOpenTellsBadCopyFromHostileTar(t *testing.T) {
	ctx := context.Background()
	t.Run("bad copy", func(t *testing.T) {
		dir := t.TempDir()
		base, vols := writeVolumes(t, dir, 4096)
		if len(vols) < 3 {
			t.Fatalf("%d volumes, want at least 3", len(vols))
		}
		flipAt(t, filepath.Join(dir, vols[2].Name), 700) // damaged too, but later in order
		flipAt(t, base+".000", 3)                        // the first header: the tar reader refuses it
		_, err := Open(ctx, base+".000")
		var ce *CheckError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "volume a.tar.000: sha256 ") ||
			!strings.Contains(err.Error(), "the volume list says "+vols[0].SHA256+": the copy is damaged") {
			t.Fatalf("got %v, want a *CheckError naming volume a.tar.000 and its listed sum", err)
		}
	})
	t.Run("rewritten with its list", func(t *testing.T) {
		dir := t.TempDir()
		base, vols := writeVolumes(t, dir, 4096)
		rewriteVolumes(t, dir, vols, func(stream []byte) { stream[3] ^= 1 })
		_, err := Open(ctx, base+".000")
		var ce *CheckError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), base+".000: ") || strings.Contains(err.Error(), "sha256") {
			t.Fatalf("got %v, want a *CheckError refusing the tar stream of %s.000", err, base)
		}
	})
}

// TestOpenRefusesLastVolumeLargerThanTheOthers: a last volume larger than the volume size is from
// another archive.
func TestOpenRefusesLastVolumeLargerThanTheOthers(t *testing.T) {
	dir := t.TempDir()
	base, vols := writeVolumes(t, dir, 4096)
	last := vols[len(vols)-1].Name
	if err := os.Truncate(filepath.Join(dir, last), 4608); err != nil { // zeros: still ends like a tar
		t.Fatal(err)
	}
	_, err := Open(context.Background(), base+".000")
	want := "volume " + last + " is 4608 bytes, larger than the 4096-byte volumes before it: it is from another archive"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

// TestOpenVolumeFilesNamesTheMissingOne: the volume that cannot be opened is named with its place.
func TestOpenVolumeFilesNamesTheMissingOne(t *testing.T) {
	dir := t.TempDir()
	base, vols := writeVolumes(t, dir, 4096)
	os.Remove(filepath.Join(dir, vols[1].Name))
	files, err := openVolumeFiles(base, vols)
	want := "volume 2 of " + strconv.Itoa(len(vols)) + " (a.tar.001): "
	if files != nil || err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; copy every volume listed in "+base+".sha256") {
		t.Fatalf("got %v, want an error starting %q", err, want)
	}
}

// TestVolumeWriterWithNothingWritten: an empty stream still makes one (empty) volume and its list.
func TestVolumeWriterWithNothingWritten(t *testing.T) {
	empty := sha256.Sum256(nil)
	sum := hex.EncodeToString(empty[:])
	for _, c := range []struct {
		size int64
		name string
	}{{0, "e.tar"}, {4096, "e.tar.000"}} {
		dir := t.TempDir()
		base := filepath.Join(dir, "e.tar")
		vw := &volumeWriter{base: base, size: c.size}
		vols, err := vw.finish()
		if err != nil {
			t.Fatal(err)
		}
		if len(vols) != 1 || vols[0] != (Volume{Name: c.name, Size: 0, SHA256: sum}) {
			t.Errorf("size %d: volumes %+v, want one empty %s", c.size, vols, c.name)
		}
		if fi, err := os.Stat(filepath.Join(dir, c.name)); err != nil || fi.Size() != 0 {
			t.Errorf("size %d: volume %s: %v", c.size, c.name, err)
		}
		if b, err := os.ReadFile(base + ChecksumSuffix); err != nil || string(b) != sum+"  "+c.name+"\n" {
			t.Errorf("size %d: volume list %q, %v", c.size, b, err)
		}
	}
}

// TestWriteTarLeavesNothingWhenItFails: a layout without index.json is not written, and no volume,
// partial or not, is left behind.
func TestWriteTarLeavesNothingWhenItFails(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	writeCheckSample(t, layout)
	os.Remove(filepath.Join(layout, ocispec.ImageIndexFile))
	base := filepath.Join(dir, "a.tar")
	_, err := WriteTar(context.Background(), layout, base, 4096)
	if err == nil || !strings.Contains(err.Error(), ocispec.ImageIndexFile) {
		t.Fatalf("got %v, want a failure on the missing index.json", err)
	}
	if m, _ := filepath.Glob(base + "*"); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
}

// TestSignKeepsSingleVolumeName: an archive of one volume NAME.tar.000 is still NAME.tar.000 once
// signed (not NAME.tar), with its list, and holds the signature.
func TestSignKeepsSingleVolumeName(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, vols := writeVolumes(t, dir, 1<<30)
	if len(vols) != 1 || vols[0].Name != "a.tar.000" {
		t.Fatalf("volumes %+v, want a.tar.000 alone", vols)
	}
	bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	desc, err := Sign(ctx, base+".000", func(ocispec.Descriptor) ([]byte, error) { return bundle, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); err == nil {
		t.Error("signing wrote a.tar beside a.tar.000")
	}
	r, err := Open(ctx, base+".000")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Volumes) != 1 || r.Volumes[0].Name != "a.tar.000" {
		t.Errorf("volumes after signing %+v, want a.tar.000 alone", r.Volumes)
	}
	_, catDesc, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := r.CatalogSignatures(ctx, catDesc.Digest)
	if err != nil || len(sigs) != 1 || sigs[0].Manifest.Digest != desc.Digest {
		t.Fatalf("signatures %+v, %v; want the one attached as %s", sigs, err, desc.Digest)
	}
}
