package archive

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestOpenBaseFromInspectJSON: the catalog as `airlock inspect --format json` printed it is a base on
// its own, with no archive behind it; a file that is JSON but not such a catalog is refused with the
// reason, and a file that is not JSON at all is taken for an archive.
func TestOpenBaseFromInspectJSON(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	held, other := digest.FromString("held"), digest.FromString("other")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cf := CatalogFile{Digest: digest.FromString("catalog"), Catalog: Catalog{Contents: []digest.Digest{held}}}
	b, _ := json.Marshal(cf)
	base, err := OpenBase(ctx, write("catalog.json", append([]byte("\n  "), b...)))
	if err != nil {
		t.Fatal(err)
	}
	if base.Digest != cf.Digest || len(base.Contents) != 1 || base.Contents[0] != held {
		t.Errorf("base %s %v, want %s [%s]", base.Digest, base.Contents, cf.Digest, held)
	}
	if !base.Has(ctx, ocispec.Descriptor{Digest: held}) {
		t.Error("Has: false for a digest the catalog lists")
	}
	if base.Has(ctx, ocispec.Descriptor{Digest: other}) {
		t.Error("Has: true for a digest the catalog does not list, with no archive to ask")
	}
	if err := base.Close(); err != nil {
		t.Errorf("Close of a base read from a catalog file: %v", err)
	}

	noContents, _ := json.Marshal(CatalogFile{Digest: cf.Digest})
	noDigest, _ := json.Marshal(CatalogFile{Catalog: Catalog{Contents: []digest.Digest{held}}})
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"broken.json", []byte(`{"digest": `), "not a catalog printed by airlock inspect --format json"},
		{"nocontents.json", noContents, "no digest or no contents list"},
		{"nodigest.json", noDigest, "no digest or no contents list"},
		{"notjson.tar", []byte("not an archive"), "volume list"},
	} {
		p := write(c.name, c.b)
		if _, err := OpenBase(ctx, p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want an error naming %s and saying %q", c.name, err, p, c.want)
		}
	}
}

// TestOpenBaseFromArchive: a base opened from the archive itself takes the catalog's digest and
// Contents, and asks the archive about what the Contents does not list (the catalog's own blobs),
// at the size asked.
func TestOpenBaseFromArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat, d := writeCheckSample(t, dir)
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	_, catDesc, err := r.Catalog(ctx)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}

	base, err := OpenBase(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if base.Digest != catDesc.Digest || len(base.Contents) != len(cat.Contents) {
		t.Errorf("base %s with %d digests, want the catalog %s with %d", base.Digest, len(base.Contents), catDesc.Digest, len(cat.Contents))
	}
	if !base.Has(ctx, d["layer"]) {
		t.Error("Has: false for a layer the catalog lists")
	}
	// The catalog manifest is not in its own Contents: only the archive knows it.
	if !base.Has(ctx, ocispec.Descriptor{Digest: catDesc.Digest, Size: catDesc.Size}) {
		t.Error("Has: false for the catalog manifest the archive holds")
	}
	if base.Has(ctx, ocispec.Descriptor{Digest: catDesc.Digest, Size: catDesc.Size + 1}) {
		t.Error("Has: true for a blob the archive holds at another size")
	}
	if base.Has(ctx, ocispec.Descriptor{Digest: digest.FromString("absent"), Size: 6}) {
		t.Error("Has: true for a blob neither the catalog nor the archive holds")
	}
	if err := base.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestOpenBaseWithoutCatalog: an archive without a catalog is no base.
func TestOpenBaseWithoutCatalog(t *testing.T) {
	dir := t.TempDir()
	stagingWithIndex(t, dir)
	if _, err := OpenBase(context.Background(), dir); !errors.Is(err, ErrNoCatalog) {
		t.Fatalf("got %v, want ErrNoCatalog", err)
	}
	if _, err := OpenBase(context.Background(), filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "open archive") {
		t.Fatalf("missing path: got %v", err)
	}
}

// TestReaderExistsAndResolve: Exists tells a blob held at the size asked from one held at another or
// not held, and reports a refused file as an error; Resolve finds an index.json entry by ref name or
// digest and nothing else.
func TestReaderExistsAndResolve(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, d := writeCheckSample(t, dir)
	// The layer replaced by a symbolic link to a copy of itself: not a regular file.
	lp := BlobPath(dir, d["layer"].Digest)
	b, err := os.ReadFile(lp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "copy"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(lp)
	if err := os.Symlink(filepath.Join(dir, "copy"), lp); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	img := d["image"]
	if ok, err := r.Exists(ctx, img); err != nil || !ok {
		t.Errorf("Exists(image): %v, %v; want true", ok, err)
	}
	if ok, err := r.Exists(ctx, ocispec.Descriptor{Digest: img.Digest, Size: img.Size - 1}); err != nil || ok {
		t.Errorf("Exists(image, wrong size): %v, %v; want false", ok, err)
	}
	if ok, err := r.Exists(ctx, ocispec.Descriptor{Digest: digest.FromString("absent"), Size: 6}); err != nil || ok {
		t.Errorf("Exists(absent): %v, %v; want false, no error", ok, err)
	}
	var ce *CheckError
	if ok, err := r.Exists(ctx, d["layer"]); ok || !errors.As(err, &ce) || !strings.Contains(err.Error(), "a symbolic link") {
		t.Errorf("Exists(symlinked layer): %v, %v; want a *CheckError refusing the symbolic link", ok, err)
	}

	for _, ref := range []string{checkRef, img.Digest.String()} {
		got, err := r.Resolve(ctx, ref)
		if err != nil || got.Digest != img.Digest {
			t.Errorf("Resolve(%s): %s, %v; want %s", ref, got.Digest, err, img.Digest)
		}
	}
	const unknown = "registry.example.com/team/app:9.9"
	if _, err := r.Resolve(ctx, unknown); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), unknown) {
		t.Errorf("Resolve(unknown): got %v, want fs.ErrNotExist naming it", err)
	}
}
