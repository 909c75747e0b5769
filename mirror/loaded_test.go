package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// pushedDigest pushes one small image to name under tag (see pushTags) and returns its digest.
func pushedDigest(ctx context.Context, t *testing.T, regs *registry.Registries, name, tag string) digest.Digest {
	t.Helper()
	mirrortest.PushTags(ctx, t, regs, name, tag)
	repo, err := regs.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := repo.Resolve(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

// TestCatalogImage: verify -c names each image as its catalog entry would: source, repository, tag,
// pinned digest and target, nothing resolved.
func TestCatalogImage(t *testing.T) {
	ref := "registry.example.com/team/app:1.0@" + digest.FromString("x").String()
	set, err := config.Parse("imageset.yaml", []byte("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nimages:\n  - ref: "+ref+"\n    target: apps/app\n"))
	if err != nil {
		t.Fatal(err)
	}
	images, err := imageSetImages(set)
	if err != nil || len(images) != 1 {
		t.Fatalf("images %+v, %v; want one", images, err)
	}
	got := images[0]
	want := archive.Image{Source: ref, Repository: "registry.example.com/team/app", Tag: "1.0", Digest: digest.FromString("x"), Target: "apps/app"}
	if got.Source != want.Source || got.Repository != want.Repository || got.Tag != want.Tag || got.Digest != want.Digest || got.Target != want.Target {
		t.Errorf("CatalogImage = %+v, want %+v", got, want)
	}
}

// TestPlansOnRegistry: each loaded image is found where load put it, and keeps its source name.
func TestPlansOnRegistry(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	app := pushedDigest(ctx, t, regs, host+"/mirror/team/app", "1.0")
	api := pushedDigest(ctx, t, regs, host+"/mirror/registry.example.com/apps/api", "2.0")
	other := pushedDigest(ctx, t, regs, host+"/mirror/team/app", "1.1")

	images := []archive.Image{{Source: "registry.example.com/team/app:1.0", Tag: "1.0", Digest: app}}
	plans, err := plansOnRegistry(ctx, regs, images, host+"/mirror", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].Source != images[0].Source || plans[0].Root.Desc.Digest != app || plans[0].Image.Registry != "registry.example.com" || plans[0].Flattened() {
		t.Fatalf("plans %+v, want the app image at %s under its source name", plans, app)
	}

	// keepHost: the source host is part of the path. Untagged and pinned by the source reference.
	images = []archive.Image{{Source: "registry.example.com/apps/api@" + api.String()}}
	plans, err = plansOnRegistry(ctx, regs, images, host+"/mirror", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].Root.Desc.Digest != api {
		t.Fatalf("keepHost plans %+v, want %s", plans, api)
	}

	// The tag moved since load: a failed check.
	images = []archive.Image{{Source: "registry.example.com/team/app:1.0", Tag: "1.0", Digest: other}}
	if _, err := plansOnRegistry(ctx, regs, images, host+"/mirror", false, nil); !errors.Is(err, plan.ErrCheckFailed) {
		t.Errorf("moved tag: %v, want a failed check", err)
	}
	// A source that is no reference, a --to without a host.
	if _, err := plansOnRegistry(ctx, regs, []archive.Image{{Source: "Not A Reference"}}, host+"/mirror", false, nil); err == nil {
		t.Error("bad source reference accepted")
	}
	if _, err := plansOnRegistry(ctx, regs, []archive.Image{{Source: "registry.example.com/team/app:1.0"}}, "/mirror", false, nil); err == nil || !strings.Contains(err.Error(), "want HOST[:PORT]/PREFIX") {
		t.Errorf("--to without host: %v", err)
	}
	// Per-image target.
	images = []archive.Image{{Source: "registry.example.com/x/y:1.0", Tag: "1.0", Target: "team/app"}}
	if plans, err = plansOnRegistry(ctx, regs, images, host+"/mirror", false, nil); err != nil || plans[0].Root.Desc.Digest != app {
		t.Errorf("per-image target: %v, %v; want %s", plans, err, app)
	}
}

// TestPlansOnRegistryFlattened: a sparse index loaded with --sparse-index=flatten is found as its one
// platform manifest, by tag or, untagged, by the manifest's digest when the index is not there.
func TestPlansOnRegistryFlattened(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	amd := pushedDigest(ctx, t, regs, host+"/mirror/team/app", "1.0")
	index := digest.FromString("the index, never loaded")
	sparse := archive.Image{Source: "registry.example.com/team/app:1.0", Tag: "1.0", Digest: index, Sparse: true,
		Platforms: []archive.Platform{{Platform: "linux/amd64", Digest: amd, MediaType: ocispec.MediaTypeImageManifest}}}

	plans, err := plansOnRegistry(ctx, regs, []archive.Image{sparse}, host+"/mirror", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := plans[0]; p.Root.Desc.Digest != amd || p.Root.Platform != "linux/amd64" || !p.Flattened() || p.Source != sparse.Source {
		t.Errorf("flattened, tagged: root %s platform %q, want %s linux/amd64", p.Root.Desc.Digest, p.Root.Platform, amd)
	}

	untagged := sparse
	untagged.Source, untagged.Tag = "registry.example.com/team/app@"+index.String(), ""
	plans, err = plansOnRegistry(ctx, regs, []archive.Image{untagged}, host+"/mirror", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := plans[0]; p.Root.Desc.Digest != amd || p.Root.Platform != "linux/amd64" {
		t.Errorf("flattened, untagged: root %s platform %q, want %s linux/amd64", p.Root.Desc.Digest, p.Root.Platform, amd)
	}

	// flattenedAt itself: not sparse, more platforms, a tag naming something else, the index there,
	// neither there.
	name := host + "/mirror/team/app"
	other := pushedDigest(ctx, t, regs, name, "2.0")
	for what, img := range map[string]archive.Image{
		"not sparse":           {Tag: "1.0", Platforms: sparse.Platforms},
		"two platforms":        {Tag: "1.0", Sparse: true, Platforms: append(slices.Clone(sparse.Platforms), archive.Platform{Digest: other})},
		"tag elsewhere":        {Tag: "2.0", Sparse: true, Digest: index, Platforms: sparse.Platforms},
		"tag absent":           {Tag: "3.0", Sparse: true, Digest: index, Platforms: sparse.Platforms},
		"index there":          {Sparse: true, Digest: other, Platforms: sparse.Platforms},
		"manifest gone":        {Sparse: true, Digest: index, Platforms: []archive.Platform{{Digest: digest.FromString("gone")}}},
		"index digest invalid": {Sparse: true, Digest: "sha256:not-a-digest", Platforms: sparse.Platforms},
	} {
		pl, err := flattenedAt(ctx, regs, name, img)
		if err != nil || pl != nil {
			t.Errorf("%s: flattenedAt = %+v, %v; want not flattened", what, pl, err)
		}
	}
	if pl, err := flattenedAt(ctx, regs, "Bad Name", sparse); err == nil || pl != nil {
		t.Errorf("invalid repository: %+v, %v; want an error", pl, err)
	}
	if pl, err := flattenedAt(ctx, regs, name, untagged); err != nil || pl == nil || pl.Platform != "linux/amd64" {
		t.Errorf("untagged flattened: %+v, %v", pl, err)
	}
}

// TestArchivedContent: only what the archive holds, at its size, is listed, each with its image.
func TestArchivedContent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mirrortest.WriteMinimalArchive(t, dir)
	src, plans := mirrortest.SamplePlans(t)
	api := plans[1]
	blobs := filepath.Join(dir, "layout", "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(d ocispec.Descriptor, b []byte) {
		if err := os.WriteFile(filepath.Join(blobs, d.Digest.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(api.Root.Desc, api.Root.Manifest)
	put(api.Root.Blobs[0], src.Blobs[api.Root.Blobs[0].Digest])
	put(api.Root.Blobs[1], []byte("short")) // the wrong size: not counted
	r, err := archive.Open(ctx, filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := archivedContent(ctx, r, plans)
	var names []string
	for _, o := range got {
		names = append(names, fmt.Sprintf("%s %s", o.Image, o.Desc.Digest))
	}
	want := []string{api.Source + " " + api.Root.Desc.Digest.String(), api.Source + " " + api.Root.Blobs[0].Digest.String()}
	if !slices.Equal(names, want) {
		t.Errorf("archived content %q, want %q", names, want)
	}
}
