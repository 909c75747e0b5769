package mirror

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
)

// TestCatalogOfAndSummarize: the catalog lists each image with its platforms, each referrer once
// however many images carry it, and counts each manifest and blob once; the summary counts
// platforms and referrers by kind and by how they were found.
func TestCatalogOfAndSummarize(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	app, api := plans[0], plans[1]
	sig, sigAmd := app.Referrers[0], app.Referrers[1]
	sig.Kind, sigAmd.Kind = referrers.KindSignature, referrers.KindSignature
	// A child without a platform (an attestation manifest of a buildx index, say) is not a platform.
	unnamed := mirrortest.ImageNode(t, &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}, "team/app", 5)
	app.Root.Children = append(app.Root.Children, unnamed)
	// The same image listed twice: its referrers, manifests and blobs are counted once.
	again := *app
	again.Source = "registry.example.com/team/app:latest"
	again.Image.Tag = "latest"

	cat := catalogOf([]*plan.ImagePlan{app, &again, api}, "v9.9")
	if cat.Tool.Name != "airlock" || cat.Tool.Version != "v9.9" || cat.Created.IsZero() {
		t.Errorf("tool %+v created %v", cat.Tool, cat.Created)
	}
	if len(cat.Images) != 3 || cat.Totals.Images != 3 {
		t.Fatalf("images %+v, want 3", cat.Images)
	}
	img := cat.Images[0]
	if img.Source != app.Source || img.Repository != "registry.example.com/team/app" || img.Tag != "1.0" || img.Digest != app.Root.Desc.Digest || img.MediaType != app.Root.Desc.MediaType || img.Size != app.Root.Desc.Size {
		t.Errorf("image entry %+v does not describe %s", img, app.Source)
	}
	var pls []string
	for _, p := range img.Platforms {
		pls = append(pls, p.Platform+" "+p.Digest.String())
	}
	wantPls := []string{"linux/amd64 " + app.Root.Children[0].Desc.Digest.String(), "linux/arm64 " + app.Root.Children[1].Desc.Digest.String()}
	if !slices.Equal(pls, wantPls) {
		t.Errorf("platforms %q, want %q (the unnamed child left out)", pls, wantPls)
	}
	if cat.Images[1].Tag != "latest" || cat.Images[2].Platforms != nil {
		t.Errorf("second and third images %+v %+v", cat.Images[1], cat.Images[2])
	}
	if len(cat.Referrers) != 2 || cat.Totals.Referrers != 2 {
		t.Fatalf("referrers %+v, want the two of app, once", cat.Referrers)
	}
	r := cat.Referrers[1]
	if r.Digest != sigAmd.Desc.Digest || r.Subject != app.Root.Children[0].Desc.Digest || r.FoundBy != string(referrers.CosignTag) || r.Tag != sigAmd.Referrer.Tag || r.Kind != referrers.KindSignature || r.Repository != "team/app" {
		t.Errorf("referrer entry %+v does not describe the platform signature", r)
	}
	// Manifests: index, 3 children, 2 signatures, api. Blobs: each manifest's config and layers.
	wantBlobs := map[digest.Digest]int64{}
	for _, p := range []*plan.ImagePlan{app, api} {
		for _, n := range p.Nodes() {
			for _, b := range n.Blobs {
				wantBlobs[b.Digest] = b.Size
			}
		}
	}
	var bytes int64
	for _, s := range wantBlobs {
		bytes += s
	}
	if cat.Totals.Manifests != 7 || cat.Totals.Blobs != len(wantBlobs) || cat.Totals.Bytes != bytes {
		t.Errorf("totals %+v, want 7 manifests, %d blobs, %d bytes", cat.Totals, len(wantBlobs), bytes)
	}
	if len(cat.Contents) != 7+len(wantBlobs) || !slices.IsSorted(cat.Contents) {
		t.Errorf("contents %d, want %d sorted digests", len(cat.Contents), 7+len(wantBlobs))
	}

	sum := summarize(cat, "out/archive")
	if sum.Archive != "out/archive" || len(sum.Images) != 3 || sum.Platforms != 4 || sum.Manifests != 7 || sum.Referrers != 2 || sum.Blobs != len(wantBlobs) || sum.Bytes != bytes {
		t.Errorf("summary %+v", sum)
	}
	if sum.ReferrersByKind[referrers.KindSignature] != 2 || len(sum.ReferrersByKind) != 1 {
		t.Errorf("by kind %v, want 2 signatures", sum.ReferrersByKind)
	}
	if sum.ReferrersByMethod[string(referrers.API)] != 1 || sum.ReferrersByMethod[string(referrers.CosignTag)] != 1 {
		t.Errorf("by method %v, want one by the API and one by cosign tag", sum.ReferrersByMethod)
	}
}

func TestReadTrustAndStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	set := &config.ImageSet{Path: "imageset.yaml", Trust: config.Trust{
		Keys:        []string{write("zeta.pub", "zeta key"), write("alpha.pub", "alpha key")},
		TrustedRoot: write("trusted_root.json", `{"root":1}`),
	}, Policy: write("policy.yaml", "policy: 1")}
	tf, err := readTrust(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(tf) != 4 || tf[0].name != "zeta.pub" || string(tf[1].data) != "alpha key" || tf[0].mediaType != archive.KeyMediaType || tf[1].mediaType != archive.KeyMediaType ||
		tf[2].mediaType != archive.TrustedRootMediaType || string(tf[3].data) != "policy: 1" || tf[3].mediaType != archive.PolicyMediaType {
		t.Fatalf("trust files %+v", tf)
	}
	tf = append(tf, trustFile{name: PinnedName, mediaType: archive.ImageSetMediaType, data: []byte("kind: ImageSet\n")})

	l, err := archive.CreateLayout(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := storeTrust(ctx, l, tf)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Keys) != 2 || tr.Keys[0].Name != "alpha.pub" || tr.Keys[1].Name != "zeta.pub" || tr.Keys[0].Digest != digest.FromString("alpha key") {
		t.Errorf("keys %+v, want alpha.pub then zeta.pub", tr.Keys)
	}
	if tr.TrustedRoot == nil || tr.TrustedRoot.Name != "trusted_root.json" || tr.Policy == nil || tr.Policy.Digest != digest.FromString("policy: 1") ||
		tr.ImageSet == nil || tr.ImageSet.Name != PinnedName || tr.ImageSet.MediaType != archive.ImageSetMediaType {
		t.Errorf("trust %+v", tr)
	}

	// Nothing named: nothing stored.
	empty, err := readTrust(&config.ImageSet{Path: "imageset.yaml"})
	if err != nil || empty != nil {
		t.Errorf("no trust: %+v, %v", empty, err)
	}
	if tr, err := storeTrust(ctx, l, empty); err != nil || tr.Keys != nil || tr.TrustedRoot != nil || tr.Policy != nil || tr.ImageSet != nil {
		t.Errorf("stored %+v, %v; want nothing", tr, err)
	}
}

// TestReadTrustMissing: a trust file that cannot be read is named by its field, before any network work.
func TestReadTrustMissing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pub")
	if err := os.WriteFile(good, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone")
	for field, set := range map[string]*config.ImageSet{
		"trust.keys[1]":     {Trust: config.Trust{Keys: []string{good, gone}}},
		"trust.trustedRoot": {Trust: config.Trust{Keys: []string{good}, TrustedRoot: gone}},
		"policy":            {Trust: config.Trust{TrustedRoot: good}, Policy: gone},
	} {
		set.Path = "site/imageset.yaml"
		_, err := readTrust(set)
		if err == nil || !strings.HasPrefix(err.Error(), "site/imageset.yaml: "+field+": ") || !strings.Contains(err.Error(), "fix the path") || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s missing: %v", field, err)
		}
	}
}
