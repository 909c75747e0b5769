package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// wantCheckError fails unless err is a *CheckError naming d, belonging to image (if given), whose
// message contains want.
func wantCheckError(t *testing.T, err error, d digest.Digest, image, want string) {
	t.Helper()
	t.Logf("refused: %v", err)
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want a *CheckError", err, err)
	}
	if d != "" && (ce.Digest != d || !strings.Contains(ce.Msg, d.String())) {
		t.Fatalf("the error names %q, want %s: %v", ce.Digest, d, err)
	}
	if image != "" && (!slices.Contains(ce.Images, image) || !strings.Contains(ce.Msg, image)) {
		t.Fatalf("the error names images %v, want %s: %v", ce.Images, image, err)
	}
	if !strings.Contains(ce.Msg, want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

func verifyArchive(t *testing.T, p string) error {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, p)
	if err != nil {
		t.Fatalf("Open(%s): %v", p, err)
	}
	defer r.Close()
	cat, _, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return VerifyContents(ctx, r, cat)
}

func flipAt(t *testing.T, p string, off int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyContentsDirectory(t *testing.T) {
	dir := t.TempDir()
	_, d := writeCheckSample(t, dir)
	if err := verifyArchive(t, dir); err != nil {
		t.Fatalf("intact archive refused: %v", err)
	}
	// The largest layer, one bit, in the middle.
	flipAt(t, BlobPath(dir, d["layer"].Digest), 35000)
	err := verifyArchive(t, dir)
	wantCheckError(t, err, d["layer"].Digest, checkRef, "does not hash to its name")
}

// TestVerifyContentsTarRewritten flips a byte of the layer inside the tar volumes and, as whoever
// rewrote the volumes would, writes a new volume list that matches them. Open passes (the list
// proves nothing); VerifyContents, and a Fetch of the layer, must still refuse it.
func TestVerifyContentsTarRewritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, d := writeCheckSample(t, filepath.Join(dir, "layout"))
	base := filepath.Join(dir, "a.tar")
	vols, err := WriteTar(ctx, filepath.Join(dir, "layout"), base, 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyArchive(t, base+".000"); err != nil {
		t.Fatalf("intact volumes refused: %v", err)
	}
	layer, err := os.ReadFile(BlobPath(filepath.Join(dir, "layout"), d["layer"].Digest))
	if err != nil {
		t.Fatal(err)
	}
	rewriteVolumes(t, dir, vols, func(stream []byte) {
		at := bytes.Index(stream, layer)
		if at < 0 {
			t.Fatal("the layer is not in the tar stream")
		}
		stream[at+len(layer)/2] ^= 1
	})
	// The volumes match their rewritten list; the layer does not match its digest: Open refuses the
	// archive before anything is read from it, naming the blob.
	_, err = Open(ctx, base+".000")
	wantCheckError(t, err, d["layer"].Digest, "", "does not hash to its name")
	if !strings.Contains(err.Error(), "rewritten after save") {
		t.Errorf("the refusal does not say the volumes were rewritten with their list: %v", err)
	}
}

// rewriteVolumes edits the stream the volumes form and writes it back, with a matching volume list.
func rewriteVolumes(t *testing.T, dir string, vols []Volume, edit func([]byte)) {
	t.Helper()
	var stream []byte
	for _, v := range vols {
		b, err := os.ReadFile(filepath.Join(dir, v.Name))
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	edit(stream)
	var list strings.Builder
	off := 0
	for _, v := range vols {
		part := stream[off : off+int(v.Size)]
		off += int(v.Size)
		if err := os.WriteFile(filepath.Join(dir, v.Name), part, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(part)
		fmt.Fprintf(&list, "%s  %s\n", hex.EncodeToString(sum[:]), v.Name)
	}
	base := strings.TrimSuffix(filepath.Join(dir, vols[0].Name), ".000")
	if err := os.WriteFile(base+ChecksumSuffix, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyContentsAgreement(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		edit  func(cat *Catalog, d map[string]ocispec.Descriptor)
		delta bool
		which string // the digest the error names
		want  string // "" = passes
	}{
		{"contents lacks a layer", func(cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Contents = slices.DeleteFunc(cat.Contents, func(x digest.Digest) bool { return x == d["layer"].Digest })
		}, false, "layer", "is not in the catalog's contents"},
		{"contents lists a digest the archive lacks", func(cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Contents = sortedDigests(append(cat.Contents, digest.FromString("elsewhere"))...)
		}, false, "", "the archive lacks blob listed in the catalog's contents"},
		{"delta lacking what its base holds", func(cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Contents = sortedDigests(append(cat.Contents, digest.FromString("in the base"))...)
		}, true, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cat, d := writeCheckSample(t, dir)
			c.edit(cat, d)
			if c.delta {
				cat.Base = digest.FromString("base")
			}
			rewriteCatalog(t, dir, cat)
			err := verifyArchive(t, dir)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantCheckError(t, err, d[c.which].Digest, "", c.want)
		})
	}

	t.Run("delta still hashes what it holds", func(t *testing.T) {
		dir := t.TempDir()
		cat, d := writeCheckSample(t, dir)
		cat.Base = digest.FromString("base")
		rewriteCatalog(t, dir, cat)
		os.Remove(BlobPath(dir, d["referrer"].Digest)) // in the base
		if err := verifyArchive(t, dir); err != nil {
			t.Fatalf("a delta lacking what its base holds is refused: %v", err)
		}
		flipAt(t, BlobPath(dir, d["layer"].Digest), 10)
		wantCheckError(t, verifyArchive(t, dir), d["layer"].Digest, checkRef, "does not hash to its name")
	})
	_ = ctx
}

// rewriteCatalog writes cat as the catalog of the layout dir, replacing the one there.
func rewriteCatalog(t *testing.T, dir string, cat *Catalog) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	idx := r.Index
	r.Close()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != CatalogRefName {
			l.AddEntry(m)
		}
	}
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestDirectoryRefusesSpecialFiles puts a symbolic link, a FIFO or a link out of the directory in
// place of a blob or index.json: each is refused by name, and nothing hangs or reads without end.
func TestDirectoryRefusesSpecialFiles(t *testing.T) {
	outside := t.TempDir()
	for _, c := range []struct {
		name   string
		file   func(dir string, d map[string]ocispec.Descriptor) string
		make   func(t *testing.T, p string)
		want   string
		atOpen bool // refused by Open (index.json) rather than by VerifyContents
	}{
		{"layer is a symlink to /dev/zero", layerPath, symlinkTo("/dev/zero"), "is a symbolic link", false},
		{"index.json is a symlink to /dev/zero", indexPath, symlinkTo("/dev/zero"), "index.json is a symbolic link", true},
		{"layer is a FIFO", layerPath, mkfifo, "is a FIFO", false},
		{"layer is a character device (/dev/zero's numbers)", layerPath, mkzero, "is a device", false},
		{"index.json is a character device", indexPath, mkzero, "index.json is a device", true},
		{"index.json is a FIFO", indexPath, mkfifo, "index.json is a FIFO", true},
		{"layer is a symlink out of the directory to the right bytes", layerPath, func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			q := filepath.Join(outside, filepath.Base(p))
			os.WriteFile(q, b, 0o644)
			symlinkTo(q)(t, p)
		}, "is a symbolic link", false},
		{"layer is a symlink to another blob inside", layerPath, func(t *testing.T, p string) {
			symlinkTo("../../index.json")(t, p)
		}, "is a symbolic link", false},
		{"blobs/sha256 is a symlink out", func(dir string, _ map[string]ocispec.Descriptor) string {
			return filepath.Join(dir, "blobs", "sha256")
		}, func(t *testing.T, p string) {
			moved := filepath.Join(outside, "moved-sha256")
			if err := os.Rename(p, moved); err != nil {
				t.Fatal(err)
			}
			symlinkTo(moved)(t, p)
		}, "blobs/sha256 is a symbolic link", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, d := writeCheckSample(t, dir)
			p := c.file(dir, d)
			c.make(t, p)
			done := make(chan error, 1)
			go func() {
				ctx := context.Background()
				r, err := Open(ctx, dir)
				if err != nil {
					done <- err
					return
				}
				defer r.Close()
				if c.atOpen {
					done <- errors.New("Open accepted it")
					return
				}
				cat, _, err := r.Catalog(ctx)
				if err != nil {
					done <- err
					return
				}
				done <- VerifyContents(ctx, r, cat)
			}()
			select {
			case err := <-done:
				wantCheckError(t, err, "", "", c.want)
				rel, _ := filepath.Rel(dir, p)
				if !strings.Contains(err.Error(), filepath.ToSlash(rel)) {
					t.Errorf("the error does not name %s: %v", rel, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the reader hung")
			}
		})
	}
}

func layerPath(dir string, d map[string]ocispec.Descriptor) string {
	return BlobPath(dir, d["layer"].Digest)
}

func indexPath(dir string, _ map[string]ocispec.Descriptor) string {
	return filepath.Join(dir, ocispec.ImageIndexFile)
}

func symlinkTo(target string) func(t *testing.T, p string) {
	return func(t *testing.T, p string) {
		t.Helper()
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// TestVerifyContentsSignedCatalog hashes the catalog's signatures too, as content of the catalog.
func TestVerifyContentsSignedCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeCheckSample(t, dir)
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	_, catDesc, err := r.Catalog(ctx)
	idx := r.Index
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		l.AddEntry(m)
	}
	bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","pretend":"bundle"}`)
	if _, err := l.AttachCatalogSignature(ctx, catDesc, bundle, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := verifyArchive(t, dir); err != nil {
		t.Fatalf("signed archive refused: %v", err)
	}
	bd := digest.FromBytes(bundle)
	flipAt(t, BlobPath(dir, bd), 5)
	wantCheckError(t, verifyArchive(t, dir), bd, catalogOwner, "does not hash to its name")
}

// mkzero makes p a character device with /dev/zero's numbers (root only; skipped otherwise).
func mkzero(t *testing.T, p string) {
	t.Helper()
	os.Remove(p)
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
		t.Skipf("mknod: %v (needs root)", err)
	}
}

// TestFetchWithholdsAlteredBlob: a blob altered after the archive was opened is refused by Fetch as
// it streams, and its last bytes are withheld, so an upload streaming from Fetch never completes.
func TestFetchWithholdsAlteredBlob(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	_, d := writeCheckSample(t, dir)
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	flipAt(t, BlobPath(dir, d["layer"].Digest), int(d["layer"].Size/2))
	rc, err := r.Fetch(ctx, d["layer"])
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	var dm *DigestMismatchError
	if !errors.As(err, &dm) || dm.Expected != d["layer"].Digest {
		t.Fatalf("Fetch of the altered layer: got %v, want a DigestMismatchError for %s", err, d["layer"].Digest)
	}
	if n >= d["layer"].Size {
		t.Errorf("Fetch handed out all %d bytes of the altered layer before failing", n)
	}
}
