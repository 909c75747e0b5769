package mirror

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// saveLayout copies plans into a new layout, leaving out what skip says, with their catalog, and
// opens it.
func saveLayout(t *testing.T, plans []*plan.ImagePlan, skip func(ocispec.Descriptor) bool) (*archive.Reader, *archive.Catalog, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "archive")
	l, err := archive.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Copy(ctx, plans, &engine.LayoutTarget{Layout: l}, engine.CopyOptions{Retry: mirrortest.Retry, Skip: skip}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WriteCatalog(ctx, catalogOf(plans, "test")); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := archive.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r, cat, catDesc
}

func sorted(ds []digest.Digest) []digest.Digest {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

func digestsOf(nodes []*plan.Node) []digest.Digest {
	var out []digest.Digest
	for _, n := range nodes {
		out = append(out, n.Desc.Digest)
	}
	return out
}

// samePlan fails unless got is want as read back: the same source, root, manifests and referrers
// (read back by subject, in the order of Nodes: their order may differ from the discovery order).
func samePlan(t *testing.T, got, want *plan.ImagePlan) {
	t.Helper()
	if got.Source != want.Source || got.Image.Tag != want.Image.Tag || got.Root.Desc.Digest != want.Root.Desc.Digest {
		t.Errorf("plan %s (%s), want %s (%s)", got.Source, got.Root.Desc.Digest, want.Source, want.Root.Desc.Digest)
	}
	if g, w := digestsOf(got.Nodes()), digestsOf(want.Nodes()); !slices.Equal(sorted(g), sorted(w)) {
		t.Errorf("%s: manifests %v, want %v", want.Source, g, w)
	}
	if g, w := digestsOf(got.Referrers), digestsOf(want.Referrers); !slices.Equal(sorted(g), sorted(w)) {
		t.Errorf("%s: referrers %v, want %v", want.Source, g, w)
	}
}

// TestPlansFromArchive: the plans read back from an archive are those saved; the catalog's own plan
// is its manifest, tagged by its creation time.
func TestPlansFromArchive(t *testing.T) {
	ctx := context.Background()
	_, plans := mirrortest.SamplePlans(t)
	r, cat, catDesc := saveLayout(t, plans, nil)
	got, err := plan.PlansFromArchive(ctx, r, cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(plans) {
		t.Fatalf("%d plans, want %d", len(got), len(plans))
	}
	for i := range plans {
		samePlan(t, got[i], plans[i])
		if got[i].Content != plan.Source(r) {
			t.Errorf("%s: content read from %v, want the archive", got[i].Source, got[i].Content)
		}
	}

	cp, err := plan.CatalogPlan(ctx, r, cat, catDesc, nil)
	if err != nil {
		t.Fatal(err)
	}
	tag := plan.CatalogTag(cat.Created, catDesc.Digest)
	if cp.Root.Desc.Digest != catDesc.Digest || cp.Root.Desc.ArtifactType != archive.CatalogArtifactType || cp.Image.Tag != tag ||
		cp.Image.Target != plan.CatalogRepository || cp.Source != "airlock catalog "+tag || len(cp.Referrers) != 0 || cp.Content != plan.Source(r) {
		t.Errorf("catalog plan %+v (root %+v), want the catalog %s tagged %s", cp, cp.Root.Desc, catDesc.Digest, tag)
	}
	if want := cat.Created.UTC().Format("20060102T150405Z") + "-" + catDesc.Digest.Encoded(); tag != want || !keptTag.MatchString(tag) {
		t.Errorf("catalog tag %q", tag)
	}
	// A catalog the archive does not hold.
	gone := catDesc
	gone.Digest = digest.FromString("no such catalog")
	if _, err := plan.CatalogPlan(ctx, r, cat, gone, nil); err == nil || !strings.Contains(err.Error(), "catalog "+gone.Digest.String()) {
		t.Errorf("missing catalog: %v", err)
	}
	// A catalog image whose source is no reference.
	bad := *cat
	bad.Images = []archive.Image{{Source: "Not A Reference"}}
	if _, err := plan.PlansFromArchive(ctx, r, &bad); err == nil || !strings.Contains(err.Error(), `catalog image "Not A Reference"`) {
		t.Errorf("bad source: %v", err)
	}
}

// baseSource is the base of a delta: the source's content, with an exists-check.
type baseSource struct{ *mirrortest.FakeSource }

func (b baseSource) Exists(_ context.Context, d ocispec.Descriptor) (bool, error) {
	b.Mu.Lock()
	defer b.Mu.Unlock()
	_, ok := b.Blobs[d.Digest]
	return ok, nil
}

// TestPlansFromDelta: a delta archive that lacks an image (saved in the base) plans it from the base;
// its content is read from the base, and what neither holds is named.
func TestPlansFromDelta(t *testing.T) {
	ctx := context.Background()
	src, plans := mirrortest.SamplePlans(t)
	api := plans[1]
	inBase := map[digest.Digest]bool{}
	for _, n := range api.Nodes() {
		inBase[n.Desc.Digest] = true
		for _, b := range n.Blobs {
			inBase[b.Digest] = true
		}
	}
	r, cat, _ := saveLayout(t, plans, func(d ocispec.Descriptor) bool { return inBase[d.Digest] })
	if ok, _ := r.Exists(ctx, api.Root.Desc); ok {
		t.Fatal("the delta holds the base's manifest")
	}
	var asked []string
	base := func(img config.Image) (content.ReadOnlyStorage, error) {
		asked = append(asked, img.String())
		return baseSource{src}, nil
	}
	got, err := plan.PlansFromDelta(ctx, r, cat, base)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plans {
		samePlan(t, got[i], plans[i])
	}
	if len(asked) != 2 {
		t.Errorf("base asked for %q, want each image", asked)
	}
	// Content: from the delta where it holds it, else from the base.
	layer := api.Root.Blobs[1]
	rc, err := got[1].Content.Fetch(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if digest.FromBytes(b) != layer.Digest {
		t.Errorf("layer from the base: %d bytes, not the layer", len(b))
	}
	amdLayer := plans[0].Root.Children[0].Blobs[1]
	if rc, err := got[0].Content.Fetch(ctx, amdLayer); err != nil {
		t.Errorf("layer in the delta: %v", err)
	} else {
		rc.Close()
	}
	if d, err := got[0].Content.Resolve(ctx, plans[0].Source); err != nil || d.Digest != plans[0].Root.Desc.Digest {
		t.Errorf("resolve in the delta: %v, %v", d.Digest, err)
	}
	missing := ocispec.Descriptor{Digest: digest.FromString("in neither"), Size: 10}
	if _, err := got[1].Content.Fetch(ctx, missing); err == nil || !strings.Contains(err.Error(), "neither in the delta archive nor on the target: load the base archive first") {
		t.Errorf("content in neither: %v", err)
	}

	// The base cannot be reached: the error is returned.
	boom := errors.New("target unreachable")
	if _, err := plan.PlansFromDelta(ctx, r, cat, func(config.Image) (content.ReadOnlyStorage, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("base failing: %v", err)
	}
}
