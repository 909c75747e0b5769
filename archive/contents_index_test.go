package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const indexRef = "registry.example.com/team/multi:2.0"

// The names the first platform manifest is also saved under: with the index, four images own the
// layer both platforms share.
var alsoRefs = []string{"registry.example.com/team/multi:one", "registry.example.com/team/multi:two", "registry.example.com/team/multi:three"}

// writeIndexSample writes a layout holding a multi-platform image: an index of two platform
// manifests, each with its own config and layer (the two layers of the same size) and a layer both
// share; the first platform manifest is also listed under each name of alsoRefs. edit, if given,
// changes the catalog before it is written; the blobs named in drop are left out of the layout.
func writeIndexSample(t *testing.T, dir string, edit func(cat *Catalog, d map[string]ocispec.Descriptor), drop ...string) map[string]ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]ocispec.Descriptor{}
	data := map[string][]byte{}
	add := func(name, mt string, b []byte) ocispec.Descriptor {
		d[name], data[name] = ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}, b
		return d[name]
	}
	shared := add("shared", ocispec.MediaTypeImageLayer, bytes.Repeat([]byte("shared layer "), 400))
	var platforms []Platform
	var manifests []ocispec.Descriptor
	for i, p := range []string{"linux/amd64", "linux/arm64"} {
		cfg := add(fmt.Sprintf("config%d", i+1), ocispec.MediaTypeImageConfig, fmt.Appendf(nil, `{"architecture":%q}`, p))
		layer := add(fmt.Sprintf("layer%d", i+1), ocispec.MediaTypeImageLayer, bytes.Repeat([]byte{byte('0' + i)}, 3000))
		mb, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{shared, layer}})
		m := add(fmt.Sprintf("manifest%d", i+1), ocispec.MediaTypeImageManifest, mb)
		m.Platform = &ocispec.Platform{OS: "linux", Architecture: strings.TrimPrefix(p, "linux/")}
		manifests = append(manifests, m)
		platforms = append(platforms, Platform{Platform: p, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size})
	}
	ib, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests})
	idx := add("index", ocispec.MediaTypeImageIndex, ib)

	cat := &Catalog{
		Tool:    Tool{Name: "airlock", Version: "test"},
		Created: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Images:  []Image{{Source: indexRef, Digest: idx.Digest, MediaType: idx.MediaType, Size: idx.Size, Platforms: platforms}},
	}
	e := idx
	e.Annotations = map[string]string{ocispec.AnnotationRefName: indexRef}
	l.AddEntry(e)
	for _, ref := range alsoRefs {
		m := d["manifest1"]
		cat.Images = append(cat.Images, Image{Source: ref, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size})
		m.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
		l.AddEntry(m)
	}
	for _, desc := range d {
		cat.Contents = append(cat.Contents, desc.Digest)
	}
	cat.Contents = sortedDigests(cat.Contents...)
	if edit != nil {
		edit(cat, d)
	}
	for name, desc := range d {
		if slices.Contains(drop, name) {
			continue
		}
		if err := l.PushBytes(ctx, desc, data[name]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestVerifyContentsMultiPlatform walks an image index to its platform manifests and their blobs.
func TestVerifyContentsMultiPlatform(t *testing.T) {
	ctx := context.Background()

	t.Run("intact", func(t *testing.T) {
		dir := t.TempDir()
		d := writeIndexSample(t, dir, nil)
		r, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cat, _, err := r.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyContents(ctx, r, cat); err != nil {
			t.Fatalf("intact archive refused: %v", err)
		}
		for _, name := range []string{"index", "manifest1", "manifest2", "config2", "layer1", "layer2", "shared"} {
			if !r.isChecked(d[name].Digest) {
				t.Errorf("%s (%s) was not hashed", name, d[name].Digest)
			}
		}
	})

	// A platform filter left the second platform out: the catalog lists the first alone and marks the
	// image sparse. The index still names the second, which the archive need not hold...
	sparse := func(cat *Catalog, d map[string]ocispec.Descriptor) {
		cat.Images[0].Platforms = cat.Images[0].Platforms[:1]
		cat.Images[0].Sparse = true
		cat.Contents = slices.DeleteFunc(cat.Contents, func(x digest.Digest) bool {
			return x == d["manifest2"].Digest || x == d["config2"].Digest || x == d["layer2"].Digest
		})
	}
	t.Run("sparse", func(t *testing.T) {
		dir := t.TempDir()
		writeIndexSample(t, dir, sparse, "manifest2", "config2", "layer2")
		if err := verifyArchive(t, dir); err != nil {
			t.Fatalf("a sparse index refused: %v", err)
		}
	})
	// ... unless the catalog's Contents lists it.
	t.Run("sparse but in contents", func(t *testing.T) {
		dir := t.TempDir()
		d := writeIndexSample(t, dir, func(cat *Catalog, d map[string]ocispec.Descriptor) {
			sparse(cat, d)
			cat.Contents = sortedDigests(append(cat.Contents, d["manifest2"].Digest)...)
		}, "manifest2", "config2", "layer2")
		wantCheckError(t, verifyArchive(t, dir), d["manifest2"].Digest, indexRef,
			"the archive lacks platform manifest of index "+d["index"].Digest.String())
	})

	t.Run("shared layer damaged", func(t *testing.T) {
		dir := t.TempDir()
		d := writeIndexSample(t, dir, nil)
		flipAt(t, BlobPath(dir, d["shared"].Digest), 100)
		err := verifyArchive(t, dir)
		wantCheckError(t, err, d["shared"].Digest, indexRef, "does not hash to its name")
		// Four images own it: three are named, sorted, and the rest counted.
		if want := "of " + indexRef + ", " + alsoRefs[0] + ", " + alsoRefs[2] + " and 1 more: "; !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want the owners as %q", err, want)
		}
	})

	// What is left to hash after the manifests goes largest first; blobs of one size by digest, so
	// the order (and which of two damaged blobs is reported) does not depend on map order.
	t.Run("same-size layers hashed in digest order", func(t *testing.T) {
		dir := t.TempDir()
		d := writeIndexSample(t, dir, nil)
		first := min(d["layer1"].Digest, d["layer2"].Digest)
		r, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cat, _, err := r.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g := &contentGraph{r: r, cat: cat, nodes: map[digest.Digest]*contentNode{}, full: true, contents: map[digest.Digest]bool{}}
		for _, c := range cat.Contents {
			g.contents[c] = true
		}
		if err := g.walk(ctx); err != nil {
			t.Fatal(err)
		}
		if err := g.agree(); err != nil {
			t.Fatal(err)
		}
		jobs := g.blobs()
		var order []digest.Digest
		for _, j := range jobs {
			order = append(order, j.d)
		}
		want := []digest.Digest{d["shared"].Digest, first, max(d["layer1"].Digest, d["layer2"].Digest)}
		// The configs are smaller than every layer and come last.
		if len(order) < 3 || !slices.Equal(order[:3], want) {
			t.Errorf("hash order %v, want the shared layer (largest), then the two same-size layers by digest %v", order, want)
		}
	})
}

// TestVerifyContentsSizeConflicts: two descriptors of one digest that disagree on its size refuse
// the archive, naming both sizes, even in a delta (where Check does not look the manifests up).
func TestVerifyContentsSizeConflicts(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(cat *Catalog, d map[string]ocispec.Descriptor)
		want func(d map[string]ocispec.Descriptor) string
	}{
		{"platform", func(cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Images[0].Platforms[0].Size++
		}, func(d map[string]ocispec.Descriptor) string {
			return fmt.Sprintf("platform linux/amd64 of %s gives %s a size of %d bytes, another descriptor says %d", indexRef, d["manifest1"].Digest, d["manifest1"].Size+1, d["manifest1"].Size)
		}},
		{"trust file", func(cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Trust.Keys = []File{{Name: "release.pub", Digest: d["index"].Digest, Size: d["index"].Size + 5, MediaType: KeyMediaType}}
		}, func(d map[string]ocispec.Descriptor) string {
			return fmt.Sprintf("trust file release.pub gives %s a size of %d bytes, another descriptor says %d", d["index"].Digest, d["index"].Size+5, d["index"].Size)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			d := writeIndexSample(t, dir, func(cat *Catalog, d map[string]ocispec.Descriptor) {
				c.edit(cat, d)
				cat.Base = digest.FromString("base")
			})
			err := verifyArchive(t, dir)
			wantCheckError(t, err, "", "", c.want(d))
		})
	}
}
