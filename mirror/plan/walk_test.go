package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/referrers"
)

// walkGraph is a manifest graph in memory with a fake referrer source: named manifests, and the
// referrers listed under each subject, in order.
type walkGraph struct {
	t     *testing.T
	store *memory.Store
	desc  map[string]ocispec.Descriptor
	name  map[digest.Digest]string
	// lists: subject name -> referrer names, in the order the source returns them.
	lists map[string][]string
	// drop: referrers the source leaves out (Describe keep false).
	drop map[string]bool
	// asked counts Referrers calls per subject name.
	asked map[string]int
}

func newWalkGraph(t *testing.T) *walkGraph {
	return &walkGraph{t: t, store: memory.New(), desc: map[string]ocispec.Descriptor{}, name: map[digest.Digest]string{},
		lists: map[string][]string{}, drop: map[string]bool{}, asked: map[string]int{}}
}

// add stores an image manifest named name (its bytes made unique by the name).
func (g *walkGraph) Add(name string) ocispec.Descriptor {
	return g.addReferrer(name, "application/vnd.test."+name, "")
}

// addIndex stores an image index named name over the manifests named.
func (g *walkGraph) addIndex(name string, children ...string) ocispec.Descriptor {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		ArtifactType: "application/vnd.test." + name, Annotations: map[string]string{"name": name}}
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, g.desc[c])
	}
	b, err := json.Marshal(idx)
	if err != nil {
		g.t.Fatal(err)
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := g.store.Push(context.Background(), d, strings.NewReader(string(b))); err != nil {
		g.t.Fatal(err)
	}
	g.desc[name], g.name[d.Digest] = d, name
	return d
}

// refer lists referrers under subject, in this order, adding the manifests not added yet.
func (g *walkGraph) refer(subject string, refs ...string) {
	for _, r := range refs {
		if _, ok := g.desc[r]; !ok {
			g.Add(r)
		}
	}
	g.lists[subject] = append(g.lists[subject], refs...)
}

func (g *walkGraph) Referrers(_ context.Context, subject ocispec.Descriptor) ([]referrers.Found, error) {
	s := g.name[subject.Digest]
	g.asked[s]++
	var out []referrers.Found
	for _, r := range g.lists[s] {
		out = append(out, referrers.Found{Descriptor: g.desc[r], Subject: subject.Digest, Method: referrers.API})
	}
	return out, nil
}

func (g *walkGraph) Describe(f referrers.Found, b []byte) (Label, bool, error) {
	n := g.name[f.Descriptor.Digest]
	if g.drop[n] {
		return Label{}, false, nil
	}
	return Label{ArtifactType: referrers.ArtifactType(b), Kind: "kind-" + n, Repository: "repo/" + n}, true, nil
}

// walk plans root's referrers and returns their names in plan order.
func (g *walkGraph) walk(root string) ([]string, []*Node, error) {
	w := &walker{repo: g.store, repoName: "test/image", seen: map[digest.Digest]*Node{}}
	var sparse bool
	n, err := w.manifest(context.Background(), g.desc[root], nil, 0, &sparse)
	if err != nil {
		g.t.Fatal(err)
	}
	nodes, err := w.referrers(context.Background(), g, []*Node{n})
	var names []string
	for _, r := range nodes {
		names = append(names, g.name[r.Desc.Digest])
	}
	return names, nodes, err
}

func TestWalkerReferrersBreadthFirstInSourceOrder(t *testing.T) {
	g := newWalkGraph(t)
	g.Add("image")
	g.refer("image", "sig", "sbom", "att")
	g.refer("sbom", "sbom-sig") // a signature on an SBOM: found recursively
	g.refer("sig", "sig-sig")   // listed before sbom-sig: its subject came first
	g.refer("sbom-sig", "sbom-sig-att")
	names, nodes, err := g.walk("image")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sig", "sbom", "att", "sig-sig", "sbom-sig", "sbom-sig-att"}
	if !slices.Equal(names, want) {
		t.Fatalf("plan order %v, want %v (breadth first, source order under each subject)", names, want)
	}
	for _, n := range nodes {
		name := g.name[n.Desc.Digest]
		if n.Kind != "kind-"+name || n.Repository != "repo/"+name || n.ArtifactType != "application/vnd.test."+name || n.Desc.ArtifactType != n.ArtifactType {
			t.Errorf("%s: kind %q, repository %q, artifactType %q/%q: not the source's label", name, n.Kind, n.Repository, n.ArtifactType, n.Desc.ArtifactType)
		}
		if n.Referrer == nil || n.Referrer.Descriptor.Digest != n.Desc.Digest {
			t.Errorf("%s: Referrer %+v", name, n.Referrer)
		}
	}
	if s := nodes[3].Referrer.Subject; s != g.desc["sig"].Digest {
		t.Errorf("sig-sig's subject %s, want sig's digest", s)
	}
}

func TestWalkerReferrersCyclesEnd(t *testing.T) {
	g := newWalkGraph(t)
	g.Add("image")
	g.refer("image", "a")
	g.refer("a", "b", "image") // the image listed as a referrer of its own referrer
	g.refer("b", "a")          // a and b refer to each other
	g.Add("c")
	g.addIndex("bundle", "image", "c") // a referrer that is an index over the image itself
	g.refer("b", "bundle")
	names, _, err := g.walk("image")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "bundle"}; !slices.Equal(names, want) {
		t.Fatalf("plan %v, want %v, each once", names, want)
	}
	for s, n := range g.asked {
		if n != 1 {
			t.Errorf("referrers of %s asked %d times, want once", s, n)
		}
	}
}

func TestWalkerReferrersDepthBound(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		g := newWalkGraph(t)
		g.Add("image")
		prev := "image"
		for i := 1; i <= depth; i++ {
			r := fmt.Sprintf("r%d", i)
			g.refer(prev, r)
			prev = r
		}
		names, _, err := g.walk("image")
		switch {
		case depth <= maxDepth && (err != nil || len(names) != depth):
			t.Errorf("a chain %d deep: %d planned, error %v; want all, no error", depth, len(names), err)
		case depth > maxDepth && (err == nil || !strings.Contains(err.Error(), "nest more than 16 deep")):
			t.Errorf("a chain %d deep: error %v, want a refusal naming the bound", depth, err)
		}
	}
}

func TestWalkerReferrersLeftOutAreNotFollowed(t *testing.T) {
	g := newWalkGraph(t)
	g.Add("image")
	g.refer("image", "unwanted", "sig")
	g.refer("unwanted", "under-unwanted")
	g.drop["unwanted"] = true
	names, _, err := g.walk("image")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sig"}; !slices.Equal(names, want) || g.asked["unwanted"] != 0 {
		t.Fatalf("plan %v (want %v); referrers of the left-out one asked %d times (want 0)", names, want, g.asked["unwanted"])
	}
}

// addReferrer stores a manifest named name that names subject as its subject (subject "" : none).
func (g *walkGraph) addReferrer(name, artifactType, subject string) ocispec.Descriptor {
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: ocispec.DescriptorEmptyJSON,
		Layers: []ocispec.Descriptor{}, Annotations: map[string]string{"name": name}}
	if subject != "" {
		s := g.desc[subject]
		m.Subject = &s
	}
	b, err := json.Marshal(m)
	if err != nil {
		g.t.Fatal(err)
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := g.store.Push(context.Background(), d, strings.NewReader(string(b))); err != nil {
		g.t.Fatal(err)
	}
	g.desc[name], g.name[d.Digest] = d, name
	return d
}

// walkCatalog plans the referrers cat lists under the manifest named root.
func (g *walkGraph) walkCatalog(root string, cat *archive.Catalog) ([]*Node, error) {
	w := &walker{repo: g.store, repoName: "test/image", seen: map[digest.Digest]*Node{}}
	var sparse bool
	n, err := w.manifest(context.Background(), g.desc[root], nil, 0, &sparse)
	if err != nil {
		g.t.Fatal(err)
	}
	return w.referrers(context.Background(), newCatalogReferrers(cat), []*Node{n})
}

// The archive's source lists the catalog's referrers in catalog order under each subject, labelled
// as their manifests say, whatever the catalog records (it may be unsigned).
func TestCatalogReferrersOrderAndLabels(t *testing.T) {
	g := newWalkGraph(t)
	img := g.Add("image")
	a := g.addReferrer("a", "application/vnd.in-toto+json", "image")
	b := g.addReferrer("b", "application/spdx+json", "image")
	c := g.Add("c") // a cosign legacy signature: no subject, bound by its tag
	sigTag := "sha256-" + b.Digest.Encoded() + ".sig"
	cat := &archive.Catalog{Referrers: []archive.Referrer{
		{Digest: b.Digest, MediaType: b.MediaType, Size: b.Size, Subject: img.Digest, Kind: "signature", ArtifactType: "x/sig", Repository: "team/app", FoundBy: "tag-schema"},
		{Digest: c.Digest, MediaType: c.MediaType, Size: c.Size, Subject: b.Digest, Kind: "sbom", ArtifactType: "x/sbom", Repository: "team/app", FoundBy: "cosign-tag", Tag: sigTag},
		{Digest: a.Digest, MediaType: a.MediaType, Size: a.Size, Subject: img.Digest, Kind: "other", ArtifactType: "x/other", Repository: "team/other", FoundBy: "api"},
	}}
	nodes, err := g.walkCatalog("image", cat)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s", g.name[n.Desc.Digest], n.Kind, n.ArtifactType, n.Repository, n.Referrer.Method, n.Referrer.Tag))
	}
	want := []string{"b sbom application/spdx+json team/app tag-schema ", "a attestation application/vnd.in-toto+json team/other api ",
		"c other application/vnd.test.c team/app cosign-tag " + sigTag}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A catalog that no key may have signed cannot tag, relabel or attach anything its manifests deny:
// each forgery refuses the image, with the reason.
func TestCatalogReferrersRefuseForgedListings(t *testing.T) {
	g := newWalkGraph(t)
	img := g.Add("image")
	other := g.Add("other")
	loose := g.Add("loose")                                                   // a runnable-looking manifest with no subject
	elsewhere := g.addReferrer("elsewhere", "application/spdx+json", "other") // a referrer of another image
	hex := img.Digest.Encoded()
	ref := func(d ocispec.Descriptor, foundBy, tag string) archive.Referrer {
		return archive.Referrer{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Subject: img.Digest, Kind: "sbom", FoundBy: foundBy, Tag: tag}
	}
	for _, tc := range []struct {
		name string
		ref  archive.Referrer
		want string
	}{
		{"a chosen tag", ref(loose, "cosign-tag", "latest"), `its tag "latest" is not sha256-` + hex + ".sig, .att or .sbom"},
		{"another subject's cosign tag", ref(loose, "cosign-tag", "sha256-"+other.Digest.Encoded()+".sig"), "is not sha256-" + hex},
		{"a cosign tag with a suffix of its own", ref(loose, "cosign-tag", "sha256-"+hex+".sig2"), "is not sha256-" + hex},
		{"no tag", ref(loose, "cosign-tag", ""), `its tag "" is not`},
		{"a tag on an API referrer", ref(elsewhere, "api", "latest"), `tag "latest" given to a referrer found by api`},
		{"a tag on a tag-schema referrer", ref(elsewhere, "tag-schema", "sha256-"+hex+".sig"), "given to a referrer found by tag-schema"},
		{"an unknown method", ref(loose, "registry", ""), `found by "registry", which is none of`},
		{"no subject in its manifest", ref(loose, "api", ""), "its manifest names no subject"},
		{"another subject in its manifest", ref(elsewhere, "tag-schema", ""), "its manifest names subject " + other.Digest.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := g.walkCatalog("image", &archive.Catalog{Referrers: []archive.Referrer{tc.ref}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "the catalog was altered; refused") {
				t.Fatalf("got %d referrers, error %v; want one with %q", len(nodes), err, tc.want)
			}
		})
	}
	// Each bound form is taken.
	for _, suffix := range []string{".sig", ".att", ".sbom"} {
		if _, err := g.walkCatalog("image", &archive.Catalog{Referrers: []archive.Referrer{ref(loose, "cosign-tag", "sha256-"+hex+suffix)}}); err != nil {
			t.Errorf("cosign tag %s: %v", suffix, err)
		}
	}
}

// listingRepo is a registry repository with the referrers API whose listing says what it likes.
type listingRepo struct {
	list map[digest.Digest][]ocispec.Descriptor
}

func (r listingRepo) Referrers(_ context.Context, d ocispec.Descriptor, _ string, fn func([]ocispec.Descriptor) error) error {
	return fn(r.list[d.Digest])
}
func (listingRepo) Tags(context.Context, string, func([]string) error) error { return nil }
func (listingRepo) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, fmt.Errorf("not found")
}

// The registry's source reads artifact type and kind from the manifest itself, never from the
// listing, and filters by the ImageSet's artifactTypes.
func TestRegistryReferrersReadTheManifest(t *testing.T) {
	g := newWalkGraph(t)
	img, sig, other := g.Add("image"), g.Add("sig"), g.Add("other")
	lie := func(d ocispec.Descriptor) ocispec.Descriptor { d.ArtifactType = "application/vnd.test.sig"; return d }
	repo := listingRepo{list: map[digest.Digest][]ocispec.Descriptor{img.Digest: {lie(sig), lie(other)}}}
	src := &registryReferrers{disc: referrers.NewDiscoverer(repo, true), repoName: "test/image",
		want: config.Referrers{Enabled: true, ArtifactTypes: []string{"application/vnd.test.sig"}}}
	w := &walker{repo: g.store, repoName: "test/image", seen: map[digest.Digest]*Node{}}
	var sparse bool
	root, err := w.manifest(context.Background(), img, nil, 0, &sparse)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := w.referrers(context.Background(), src, []*Node{root})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Desc.Digest != sig.Digest || nodes[0].ArtifactType != "application/vnd.test.sig" || nodes[0].Kind != "other" || nodes[0].Repository != "test/image" {
		t.Fatalf("planned %d: %+v; want only sig, its artifact type read from its manifest", len(nodes), nodes)
	}
}
