package archive

// Tests written from an honest gremlins run over contents.go (issue 20): VerifyContents' content
// graph (add, walk, readManifest, agree, blobs), driven directly on an archive held in memory so
// that each runs in well under a millisecond. Each asserts what the graph records (a node's size,
// media type, what it is, its referrers) or the message it refuses with. See docs/mutation.md.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// memArchive is an archive in memory: its blobs and its index.json entries.
type memArchive struct {
	files fstest.MapFS
	index []ocispec.Descriptor
}

// newMemArchive returns an archive whose index.json lists an empty catalog manifest (a manifest with
// no config and no layers) under CatalogRefName.
func newMemArchive() *memArchive {
	a := &memArchive{files: fstest.MapFS{}}
	c := a.blob(ocispec.MediaTypeImageManifest, []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))
	c.Annotations = map[string]string{ocispec.AnnotationRefName: CatalogRefName}
	a.index = append(a.index, c)
	return a
}

// blob stores b and returns its descriptor.
func (a *memArchive) blob(mt string, b []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	a.files[blobName(d.Digest)] = &fstest.MapFile{Data: b}
	return d
}

// manifest stores the JSON of v and returns its descriptor (media type mt).
func (a *memArchive) manifest(t *testing.T, mt string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return a.blob(mt, b)
}

// graph is the content graph VerifyContents builds for this archive and cat.
func (a *memArchive) graph(cat *Catalog) *contentGraph {
	r := &Reader{Path: "mem", Index: ocispec.Index{Manifests: a.index}, fsys: a.files}
	g := &contentGraph{r: r, cat: cat, nodes: map[digest.Digest]*contentNode{}, full: cat.Base == "", contents: map[digest.Digest]bool{}}
	for _, d := range cat.Contents {
		g.contents[d] = true
	}
	return g
}

// walkAgree runs walk, then agree, as VerifyContents does.
func walkAgree(t *testing.T, g *contentGraph) error {
	t.Helper()
	if err := g.walk(t.Context()); err != nil {
		return err
	}
	return g.agree()
}

// node is the graph's node for d; the test fails if there is none.
func node(t *testing.T, g *contentGraph, d digest.Digest) *contentNode {
	t.Helper()
	n, ok := g.nodes[d]
	if !ok {
		t.Fatalf("no node for %s", d)
	}
	return n
}

func image(desc ocispec.Descriptor) Image {
	return Image{Source: "registry.example.com/app:1", Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size}
}

func wantMsg(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

// TestContentGraphMediaType: a digest reached first with no media type takes the first one a later
// descriptor gives, and keeps it when a later one gives none.
func TestContentGraphMediaType(t *testing.T) {
	g := newMemArchive().graph(&Catalog{})
	d := digest.FromString("m")
	steps := []struct{ give, want string }{
		{"", ""},
		{ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageIndex},
		{"", ocispec.MediaTypeImageIndex},
		{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex},
	}
	for _, s := range steps {
		n, err := g.add(ocispec.Descriptor{MediaType: s.give, Digest: d, Size: 3}, false, false, "x")
		if err != nil {
			t.Fatal(err)
		}
		if n.desc.MediaType != s.want {
			t.Fatalf("after a descriptor with media type %q: %q, want %q", s.give, n.desc.MediaType, s.want)
		}
	}
}

// TestContentGraphIndexEntryNames: a missing index.json entry is named by its reference name, or by
// its digest when it has none.
func TestContentGraphIndexEntryNames(t *testing.T) {
	a := newMemArchive()
	named := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("named"), Size: 10,
		Annotations: map[string]string{ocispec.AnnotationRefName: "registry.example.com/app:1"}}
	unnamed := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("unnamed"), Size: 10}
	a.index = append(a.index, named, unnamed)
	g := a.graph(&Catalog{})
	if err := g.walk(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w := node(t, g, named.Digest).what; w != "index.json entry registry.example.com/app:1" {
		t.Errorf("named entry: %q", w)
	}
	if w := node(t, g, unnamed.Digest).what; w != "index.json entry "+unnamed.Digest.String() {
		t.Errorf("unnamed entry: %q", w)
	}
	err := g.agree()
	wantMsg(t, err, "the archive lacks index.json entry ")
}

// TestContentGraphSubjectAnnotation: an index.json entry whose subject annotation is a valid digest
// is recorded as a referrer of it (the subject node, unknown in size until the catalog's image gives
// one, takes that size); an invalid one is ignored.
func TestContentGraphSubjectAnnotation(t *testing.T) {
	a := newMemArchive()
	m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest})
	sig := a.manifest(t, ocispec.MediaTypeImageManifest, map[string]string{"mediaType": ocispec.MediaTypeImageManifest, "x": "sig"})
	sig.Annotations = map[string]string{AnnotationSubject: m.Digest.String()}
	bad := a.manifest(t, ocispec.MediaTypeImageManifest, map[string]string{"mediaType": ocispec.MediaTypeImageManifest, "x": "bad"})
	bad.Annotations = map[string]string{AnnotationSubject: "sha256:nothex"}
	a.index = append(a.index, sig, bad)
	cat := &Catalog{Images: []Image{image(m)}}
	g := a.graph(cat)
	if err := walkAgree(t, g); err != nil {
		t.Fatalf("refused: %v", err)
	}
	n := node(t, g, m.Digest)
	if !slices.Equal(n.referrers, []digest.Digest{sig.Digest}) || n.desc.Size != m.Size {
		t.Fatalf("subject %s: referrers %v, size %d; want [%s], %d", m.Digest, n.referrers, n.desc.Size, sig.Digest, m.Size)
	}
	if _, ok := g.nodes["sha256:nothex"]; ok {
		t.Fatal("an invalid subject annotation made a node")
	}
	// The referrer belongs to the image it refers to.
	if o := g.owners(sig.Digest); !slices.Equal(o, []string{"registry.example.com/app:1"}) {
		t.Fatalf("owners of the referrer: %v", o)
	}
}

// TestContentGraphCatalogReferrer: the catalog's referrers are recorded against their subject.
func TestContentGraphCatalogReferrer(t *testing.T) {
	a := newMemArchive()
	m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest})
	sig := a.manifest(t, ocispec.MediaTypeImageManifest, map[string]string{"mediaType": ocispec.MediaTypeImageManifest, "x": "sig"})
	cat := &Catalog{Images: []Image{image(m)}, Referrers: []Referrer{
		{Digest: sig.Digest, MediaType: sig.MediaType, Size: sig.Size, Kind: "signature", Subject: m.Digest},
	}}
	g := a.graph(cat)
	if err := walkAgree(t, g); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if r := node(t, g, m.Digest).referrers; !slices.Equal(r, []digest.Digest{sig.Digest}) {
		t.Fatalf("referrers of %s: %v, want [%s]", m.Digest, r, sig.Digest)
	}
}

// TestContentGraphDeltaCatalogBlobs: a delta need not hold its images' blobs, but it must hold the
// catalog manifest's.
func TestContentGraphDeltaCatalogBlobs(t *testing.T) {
	a := &memArchive{files: fstest.MapFS{}}
	layer := ocispec.Descriptor{MediaType: "application/vnd.airlock.trust", Digest: digest.FromString("key"), Size: 3}
	c := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{layer}})
	c.Annotations = map[string]string{ocispec.AnnotationRefName: CatalogRefName}
	a.index = append(a.index, c)
	g := a.graph(&Catalog{Base: digest.FromString("base")})
	err := walkAgree(t, g)
	wantMsg(t, err, "the archive lacks layer of manifest "+c.Digest.String())
}

// TestContentGraphContentsOnly: a digest only the catalog's Contents lists has no size until the
// archive's file gives one; an invalid digest in Contents is refused.
func TestContentGraphContentsOnly(t *testing.T) {
	a := newMemArchive()
	b := a.blob("", []byte("12345"))
	missing := digest.FromString("missing")
	cat := &Catalog{Contents: sortedDigests(b.Digest, missing)}
	g := a.graph(cat)
	if err := g.walk(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, d := range cat.Contents {
		if n := g.nodes[d]; n == nil || n.desc.Size != -1 || n.what != "blob listed in the catalog's contents" {
			t.Fatalf("%s: %+v, want size -1", d, n)
		}
	}
	err := g.agree()
	wantCheckError(t, err, missing, "", "the archive lacks blob listed in the catalog's contents")
	if n := node(t, g, b.Digest); !n.present || n.desc.Size != 5 {
		t.Fatalf("present blob: %+v, want present, size 5", n)
	}
	jobs := g.blobs()
	if !slices.Equal(jobs, []hashJob{{d: b.Digest, size: 5, what: "blob listed in the catalog's contents"}}) {
		t.Fatalf("jobs %+v", jobs)
	}

	g = a.graph(&Catalog{Contents: []digest.Digest{"sha256:nothex"}})
	wantMsg(t, g.walk(t.Context()), `blob listed in the catalog's contents names an invalid digest "sha256:nothex"`)
}

// TestContentGraphManifestSizeLimit: a manifest descriptor of 0 bytes, or of the limit, is read
// (and a missing one left to agree); one over the limit is refused before anything is read.
func TestContentGraphManifestSizeLimit(t *testing.T) {
	a := newMemArchive()
	m := a.blob(ocispec.MediaTypeImageManifest, []byte("{}"))
	m.Size = 0
	g := a.graph(&Catalog{Images: []Image{image(m)}})
	err := walkAgree(t, g)
	wantMsg(t, err, "manifest "+m.Digest.String()+" is 1 bytes or more in the archive, its descriptor says 0")

	for _, size := range []int64{MaxManifestSize, MaxManifestSize + 1} {
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: size}
		g := newMemArchive().graph(&Catalog{Images: []Image{image(d)}})
		err := g.walk(t.Context())
		if size == MaxManifestSize {
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			continue
		}
		wantMsg(t, err, "is 4194305 bytes, over the 4194304-byte limit for a manifest")
	}
}

// TestContentGraphMediaTypeDecides: the descriptor's media type, when it gives one, decides whether a
// manifest is an index, whatever the manifest says; when neither gives one, a manifests list does.
func TestContentGraphMediaTypeDecides(t *testing.T) {
	a := newMemArchive()
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("layer"), Size: 5}
	plat := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("platform"), Size: 5}
	// Says it is an index, its descriptor says manifest: its layers are walked.
	m := a.manifest(t, ocispec.MediaTypeImageManifest, map[string]any{"mediaType": ocispec.MediaTypeImageIndex, "layers": []ocispec.Descriptor{layer}})
	// No media type anywhere, a manifests list: an index.
	i := a.manifest(t, "", map[string]any{"manifests": []ocispec.Descriptor{plat}})
	g := a.graph(&Catalog{Base: "sha256:0000000000000000000000000000000000000000000000000000000000000000", Images: []Image{image(m), image(i)}})
	if err := g.walk(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := node(t, g, m.Digest).children; !slices.Equal(c, []digest.Digest{layer.Digest}) || node(t, g, layer.Digest).what != "layer of manifest "+m.Digest.String() {
		t.Fatalf("manifest with an index's media type: children %v", c)
	}
	if c := node(t, g, i.Digest).children; !slices.Equal(c, []digest.Digest{plat.Digest}) || node(t, g, plat.Digest).what != "platform manifest of index "+i.Digest.String() {
		t.Fatalf("index with no media type: children %v", c)
	}
}

// TestContentGraphManifestBlobs: a manifest's config, layers and subject, each named for what it is.
func TestContentGraphManifestBlobs(t *testing.T) {
	a := newMemArchive()
	cfg := a.blob(ocispec.MediaTypeImageConfig, []byte(`{"os":"linux"}`))
	layer := a.blob(ocispec.MediaTypeImageLayer, []byte("layer bytes"))
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("subject"), Size: 7}
	m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}, Subject: &subject})
	g := a.graph(&Catalog{Images: []Image{image(m)}})
	if err := walkAgree(t, g); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if c := node(t, g, m.Digest).children; !slices.Equal(c, []digest.Digest{cfg.Digest, layer.Digest}) {
		t.Fatalf("children %v, want [config layer]", c)
	}
	if w := node(t, g, cfg.Digest).what; w != "config of manifest "+m.Digest.String() {
		t.Errorf("config: %q", w)
	}
	if w := node(t, g, layer.Digest).what; w != "layer of manifest "+m.Digest.String() {
		t.Errorf("layer: %q", w)
	}
	if r := node(t, g, subject.Digest).referrers; !slices.Equal(r, []digest.Digest{m.Digest}) {
		t.Errorf("subject's referrers %v", r)
	}
}

// TestContentGraphFirstInDigestOrder: of two missing blobs, the one reported is the lower digest.
func TestContentGraphFirstInDigestOrder(t *testing.T) {
	a := newMemArchive()
	l1 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("one"), Size: 3}
	l2 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("two"), Size: 3}
	m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{l1, l2}})
	err := walkAgree(t, a.graph(&Catalog{Images: []Image{image(m)}}))
	first := min(l1.Digest, l2.Digest)
	wantCheckError(t, err, first, "registry.example.com/app:1", "the archive lacks layer of manifest")
}

// TestContentGraphSubjectOnly: a digest only ever named as a subject is not content of the archive,
// even when a file of that name is there: it is not hashed.
func TestContentGraphSubjectOnly(t *testing.T) {
	a := newMemArchive()
	s := a.blob(ocispec.MediaTypeImageManifest, []byte("subject"))
	a.files[blobName(s.Digest)].Data = []byte("altered") // would fail if hashed
	sig := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Subject: &s})
	g := a.graph(&Catalog{Images: []Image{image(sig)}})
	if err := walkAgree(t, g); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if node(t, g, s.Digest).present {
		t.Fatal("the subject was counted as content")
	}
	jobs := g.blobs()
	if len(jobs) != 0 {
		t.Fatalf("jobs %+v, want none", jobs)
	}
}

// TestContentGraphBlobSizeAgainstFile: a blob's file must have its descriptor's size, 0 included.
func TestContentGraphBlobSizeAgainstFile(t *testing.T) {
	for _, size := range []int64{0, 4, 6} {
		a := newMemArchive()
		layer := a.blob(ocispec.MediaTypeImageLayer, []byte("hello"))
		layer.Size = size
		m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{layer}})
		err := walkAgree(t, a.graph(&Catalog{Images: []Image{image(m)}}))
		if ce, ok := err.(*CheckError); !ok || ce.Digest != layer.Digest {
			t.Fatalf("got %v, want a *CheckError naming %s", err, layer.Digest)
		}
		wantCheckError(t, err, "", "", fmt.Sprintf("layer of manifest %s is 5 bytes in the archive, its descriptor says %d", m.Digest, size))
	}
}

// TestContentGraphContentsList: with no Contents (catalogs before it), nothing is checked against it;
// with one, a present digest that belongs to no image (here an index.json entry no image lists) need
// not be in it, one that belongs to an image must.
func TestContentGraphContentsList(t *testing.T) {
	a := newMemArchive()
	layer := a.blob(ocispec.MediaTypeImageLayer, []byte("layer"))
	m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{layer}})
	other := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest})
	a.index = append(a.index, other)
	if err := walkAgree(t, a.graph(&Catalog{Images: []Image{image(m)}})); err != nil {
		t.Fatalf("no Contents: %v", err)
	}
	if err := walkAgree(t, a.graph(&Catalog{Images: []Image{image(m)}, Contents: sortedDigests(m.Digest, layer.Digest)})); err != nil {
		t.Fatalf("Contents listing the image: %v", err)
	}
	err := walkAgree(t, a.graph(&Catalog{Images: []Image{image(m)}, Contents: []digest.Digest{m.Digest}}))
	wantCheckError(t, err, layer.Digest, "registry.example.com/app:1", "is not in the catalog's contents")
}

// TestContentGraphCheckedBlobs: a blob this Reader already hashed is not hashed again when its file
// has its descriptor's size; it is when the size differs.
func TestContentGraphCheckedBlobs(t *testing.T) {
	a := newMemArchive()
	l1 := a.blob(ocispec.MediaTypeImageLayer, []byte("first layer"))
	l2 := a.blob(ocispec.MediaTypeImageLayer, []byte("second"))
	m := a.manifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{l1, l2}})
	g := a.graph(&Catalog{Images: []Image{image(m)}})
	if err := walkAgree(t, g); err != nil {
		t.Fatal(err)
	}
	g.r.markChecked([]digest.Digest{l1.Digest})
	jobs := g.blobs()
	want := []hashJob{{d: l2.Digest, size: l2.Size, what: "layer of manifest " + m.Digest.String()}}
	if !slices.Equal(jobs, want) {
		t.Fatalf("jobs %+v, want %+v", jobs, want)
	}
	// Checked, but its file is now another size: hashed again (and refused then).
	node(t, g, l1.Digest).desc.Size = 5
	jobs = g.blobs()
	if len(jobs) != 2 || jobs[0].d != l2.Digest || jobs[1].d != l1.Digest {
		t.Fatalf("jobs %+v, want l2 then l1", jobs)
	}
}
